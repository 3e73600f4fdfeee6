import CSQLite
import Events
import Foundation
import Logging
import Resources
import Routing
import SQLiteSupport
import ServiceLifecycle

/// A runner's event pipeline: events taken in on `--events-listen`, evaluated against the routes of the agent's
/// slice, the actions placed on this runner delivered here, and what the controller must do (the route's other
/// actions, and the execution records) handed up over HTTPS.
///
/// Everything lives in `events.db` in the state directory, so a runner cut off from the controller keeps taking
/// events and running its own actions, and its hand-offs and records drain when the controller is back.
public final class AgentEvents: Service, Sendable {
    public let pipeline: EventPipeline
    let agentState: AgentState
    let listener: EventListener.Configuration?
    let controllerURL: String
    let identity: @Sendable () -> AgentIdentity?
    let compiled = CompiledCache()
    let logger: Logger

    /// Opens `events.db` in `directory`.
    ///
    /// - Parameter identity: the agent's identity once it has one (after enrolment); hand-offs wait until then.
    public init(
        configuration: AgentConfiguration, state: AgentState, directory: String,
        listener: EventListener.Configuration?, identity: @escaping @Sendable () -> AgentIdentity?, logger: Logger
    ) throws {
        pipeline = EventPipeline(
            configuration: .init(location: configuration.name, allowsExec: configuration.allowsExec),
            store: try Self.openStore(
                path: URL(fileURLWithPath: directory).appendingPathComponent("events.db").path, logger: logger),
            httpClient: EventPipeline.sharedHTTPClient, metrics: EventMetrics(registry: .init()), logger: logger)
        self.agentState = state
        self.listener = listener
        self.controllerURL = configuration.controllerURL
        self.identity = identity
        self.logger = logger
    }

    /// Opens the event store at `path`. A file SQLite cannot read, or that fails its quick check (truncated,
    /// overwritten), is set aside as `events.db.corrupt-<time>` with its `-wal` and `-shm` files, the reason is
    /// logged, and an empty store is opened: a damaged outbox never stops the agent (nor makes it crash-loop).
    static func openStore(path: String, logger: Logger) throws -> EventStore {
        do {
            try checkIntegrity(ofStoreAt: path)
            return try EventStore(path: path)
        } catch {
            let aside = try PrivateFile.setAside(path)
            for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                _ = try PrivateFile.setAside(path + suffix)
            }
            logger.warning(
                "the event store could not be read; it was set aside and the agent starts with an empty one",
                metadata: ["steady.file": "\(path)", "steady.setAside": "\(aside)", "steady.reason": "\(error)"])
            return try EventStore(path: path)
        }
    }

    /// Throws unless the SQLite file at `path` (when there is one) passes `PRAGMA quick_check`.
    private static func checkIntegrity(ofStoreAt path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let connection = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READWRITE)
        defer { connection.close() }
        let check = try connection.statement("PRAGMA quick_check")
        defer { check.reset() }
        var problems: [String] = []
        while try check.step() {
            let line = check.text(0)
            if line != "ok" { problems.append(line) }
        }
        guard problems.isEmpty else {
            throw AgentError(
                code: .storage, message: "\(path) fails its integrity check: \(problems.prefix(3).joined(separator: "; "))")
        }
    }

    public func run() async throws {
        let application = try listener.map { configuration in
            try EventServer(configuration: configuration, pipeline: pipeline) { [logger] port in
                logger.info("events listening", metadata: ["steady.events.port": "\(port)"])
            }
        }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.pipeline.run() }
            if let application { group.addTask { try await application.run() } }
            group.addTask { await self.followSlice() }
            group.addTask { await self.connectUpstream() }
        }
    }

    /// Rebuilds the route table whenever the agent applies a new slice.
    private func followSlice() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let slice = await self.agentState.currentSlice
                self.pipeline.update(Self.table(of: slice, compiled: self.compiled))
                await self.agentState.sliceChanged.wait()
            }
        }
    }

    /// The route table of a slice: its routes, with the actions the slice holds as local and the others upstream.
    static func table(of slice: RunnerSlice, compiled: CompiledCache) -> RouteTable {
        func objects(_ kind: String) -> [String: JSONValue] {
            Dictionary(uniqueKeysWithValues: slice.names(ofKind: kind).compactMap { name in
                slice[kind, name].map { (name, $0) }
            })
        }
        let actions = objects(ActionSpec.kind)
        return RouteTable.build(
            revision: slice.revision, routes: objects(RouteSpec.kind), actions: actions,
            templates: objects(TemplateSpec.kind), secrets: objects(Secret.kind),
            isLocal: { actions[$0] != nil }, compiled: compiled)
    }

    /// Waits for the agent's identity, then lets the pipeline send hand-offs and records with its credential.
    private func connectUpstream() async {
        var attempt = 0
        while !Task.isCancelled {
            if let identity = identity() {
                do {
                    let client = try AgentControllerClient(
                        controllerURL: controllerURL, caPEM: identity.caPEM, http: EventPipeline.sharedHTTPClient)
                    let credential = identity.credential
                    pipeline.setUpstream(
                        EventPipeline.Upstream(
                            sendHandOffs: { handOffs in
                                try await client.post(
                                    EventProtocol.handOffPath,
                                    json: try JSONEncoder().encode(EventHandOffBatch(handOffs: handOffs)),
                                    credential: credential)
                            },
                            sendExecutions: { executions in
                                try await client.post(
                                    EventProtocol.executionsPath,
                                    json: Data(ExecutionReportBatch(executions: executions).jsonBytes()),
                                    credential: credential)
                            }))
                } catch {
                    logger.error("cannot report events upstream", metadata: ["steady.error": "\(error)"])
                }
                return
            }
            // Only before the first enrolment: the identity appears once the agent has enrolled.
            try? await Task.sleep(for: Backoff.reconnect.delay(attempt: attempt))
            attempt += 1
        }
    }
}
