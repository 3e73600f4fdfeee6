import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Resources
import ServiceLifecycle
import Synchronization

/// A runner agent: enrols (unless it has an identity), then follows its slice stream and reports until shut down.
///
/// Many agents can share one process (an agent simulator runs thousands): per agent there is one stream
/// connection, a few tasks (the stream's reader, reporter and watchdog, and the heartbeat tick), one ``AgentState``
/// and the slice itself. HTTP is used only to enrol.
///
/// `run()` ends with an ``AgentError`` when going on is pointless: a join token the controller refuses, a CA that
/// does not match the token, a revoked credential. Unreachable controllers are retried with backoff forever.
public final class Agent: Service {
    /// The configuration the agent was started with.
    public let configuration: AgentConfiguration
    /// What the agent holds now; the event pipeline reads the current slice from it.
    public let state: AgentState
    private let sliceStorage: any SliceStorage
    private let identityStorage: any IdentityStorage
    private let sharedClient: HTTPClient?
    private let logger: Logger
    /// Remote runs: nil for an agent without a state directory (the ledger that keeps a run from starting twice
    /// lives there).
    let runs: RunService?
    /// Runs on the Runner's own `spec.schedule`, through ``runs``; nil when ``runs`` is.
    let scheduler: RunScheduler?
    /// Asks the connected stream for a report: on each heartbeat, each slice message, each scheduled run.
    private let reportTrigger = ReportTrigger()
    /// Whether the start-up pages were given back (at most once; see ``AgentConfiguration/releasesStartupPages``).
    private let startupPagesReleased = Atomic(false)

    /// Creates an agent and loads its last good slice from `sliceStorage`, so it serves it at once.
    ///
    /// - Parameters:
    ///   - configuration: Where the controller is and who the agent is.
    ///   - sliceStorage: Where the last good slice is kept (``AgentStateDirectory`` or ``InMemoryAgentStorage``).
    ///   - identityStorage: Where the identity is kept after enrolment.
    ///   - httpClient: A client for enrolment to share with other agents; when nil the agent makes one and shuts
    ///     it down once enrolled.
    ///   - logger: Where the agent logs; it never logs the token, the credential or secret values.
    ///   - runLedgerDirectory: Where the ledger of remote runs is kept; nil refuses remote runs (they become
    ///     `Unreachable` on the controller).
    public init(
        configuration: AgentConfiguration, sliceStorage: any SliceStorage, identityStorage: any IdentityStorage,
        httpClient: HTTPClient? = nil, runLedgerDirectory: String? = nil, logger: Logger
    ) {
        var logger = logger
        logger[metadataKey: "steady.runner"] = "\(configuration.name)"
        self.configuration = configuration
        self.sliceStorage = sliceStorage
        self.identityStorage = identityStorage
        self.sharedClient = httpClient
        self.logger = logger
        var lastGood: RunnerSlice?
        do {
            lastGood = try sliceStorage.loadSlice()
        } catch {
            logger.warning(
                "cannot load the last good slice; starting empty", metadata: ["steady.error": "\(error)"])
        }
        let validator = SliceValidator(allowsExec: configuration.allowsExec, runner: configuration.name)
        state = AgentState(lastGood: lastGood, validator: validator)
        var runs: RunService?
        if let runLedgerDirectory {
            do {
                let executor = RunExecutor(
                    configuration: .init(
                        runner: configuration.name, runCommand: configuration.runCommand,
                        allowsExec: configuration.allowsExec))
                runs = RunService(
                    executor: executor, ledger: try RunLedger(directory: runLedgerDirectory, logger: logger),
                    stateDirectory: runLedgerDirectory, logger: logger)
            } catch {
                logger.error("cannot open the run ledger; remote runs will not start", metadata: ["steady.error": "\(error)"])
            }
        }
        self.runs = runs
        scheduler = runs.map { [state, reportTrigger] runs in
            RunScheduler(runner: configuration.name, runs: runs) { summary in
                await state.setLastRun(summary)
                reportTrigger.pull()
            }
        }
    }

    /// Creates an agent keeping everything in one state directory.
    public convenience init(
        configuration: AgentConfiguration, stateDirectory: AgentStateDirectory, httpClient: HTTPClient? = nil,
        logger: Logger
    ) {
        self.init(
            configuration: configuration, sliceStorage: stateDirectory, identityStorage: stateDirectory,
            httpClient: httpClient, runLedgerDirectory: stateDirectory.path, logger: logger)
    }

    /// A client for enrolment, for one agent or many sharing it (the stream does not use it).
    public static func makeHTTPClient(maximumConnections: Int = 8) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(maximumConnections, 2))
        // The agent's own backoff decides when to try again, not the pool's.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        configuration.decompression = .disabled
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Enrols if needed, then follows the slice stream and reports until graceful shutdown or cancellation.
    public func run() async throws {
        if let dropped = await state.droppedLoadedSlice {
            logger.warning(
                "the saved slice is not allowed any more; serving nothing until the controller sends a new one",
                metadata: ["steady.reason": "\(dropped.reason)", "steady.message": "\(dropped.message)"])
        }
        try configuration.validate()
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    if let runs = self.runs { group.addTask { await runs.run() } }
                    if let runs = self.runs, let scheduler = self.scheduler {
                        // Runs on schedule from the slice kept on disk, whether or not the controller is up.
                        await self.state.setLastRun(await runs.lastScheduledResult.map(RunSchedule.summary(of:)))
                        await scheduler.update(await self.state.currentSlice.schedule(of: self.configuration.name))
                        group.addTask { await scheduler.run() }
                    }
                    group.addTask { try await self.enrolAndFollow() }
                    defer { group.cancelAll() }
                    // The agent's life ends with its stream loop; runs still going are stopped with it.
                    try await group.next()
                }
            }
        } catch is CancellationError {
        }
        logger.trace("agent loops ended")
    }

    /// HTTP is needed only to enrol; the stream has a connection of its own, so an agent's own HTTP client is shut
    /// down before it follows the slice rather than left holding an idle connection to the controller.
    private func enrolAndFollow() async throws {
        let http = sharedClient ?? Self.makeHTTPClient()
        let identity: AgentIdentity?
        do {
            identity = try await resolveIdentity(http: http)
        } catch {
            if sharedClient == nil { try? await http.shutdown() }
            throw error
        }
        if sharedClient == nil { try await http.shutdown() }
        guard let identity else { return }
        // The client's HTTP side is not used again: the stream makes its own connection.
        // The configured controllers, then those the join token named at enrolment.
        let clients = try AgentConfiguration.merged(configuration.controllerURLs, identity.controllers).map {
            try AgentControllerClient(
                controllerURL: $0, caPEM: identity.caPEM, http: http, requestTimeout: configuration.requestTimeout)
        }
        guard !clients.isEmpty else {
            throw AgentError(code: .invalidConfiguration, message: "--controller names no controller URL")
        }
        try await run(clients: clients, identity: identity)
    }

    private func run(clients: [AgentControllerClient], identity: AgentIdentity) async throws {
        let reportTrigger = self.reportTrigger
        let current = CurrentIdentity(identity)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await self.followSlice(clients: clients, identity: current, reportTrigger: reportTrigger)
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: self.configuration.heartbeatInterval)
                    reportTrigger.pull()
                    await self.releaseStartupPagesOnceInSync()
                }
            }
            group.addTask { try await self.rotateCredential(clients: clients, identity: current) }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    // MARK: Credential rotation

    /// Rotates the credential a third of its lifetime before it expires (``CredentialRotation`` decides when),
    /// saves the new one, and has the stream reconnect with it, which confirms it to the controller. Never returns
    /// before cancellation: the agent's loops end together.
    private func rotateCredential(clients: [AgentControllerClient], identity current: CurrentIdentity) async throws {
        let clock = ContinuousClock()
        let initial = current.identity
        var rotation = CredentialRotation(
            issued: initial.credentialIssued, expires: initial.credentialExpires,
            isLifetimeKnown: initial.isCredentialLifetimeKnown, wallNow: Date(), now: clock.now)
        var attempts = 0
        while !Task.isCancelled {
            switch rotation.step(now: clock.now) {
            case .idle:
                await Self.waitForCancellation()
            case .wait(let until):
                try await clock.sleep(until: until)
            case .expired:
                logger.error(
                    """
                    the credential expired before it could be rotated; the controller refuses it now: remove the \
                    credential from the state directory and enrol again with a new join token
                    """,
                    metadata: ["steady.expiredAt": "\(current.identity.credentialExpires.map(Timestamp.format) ?? "")"])
                await Self.waitForCancellation()
            case .rotate:
                let client = clients[attempts % clients.count]
                attempts += 1
                do {
                    let next = try await rotate(current.identity, at: client)
                    rotation.rotated(
                        issued: next.credentialIssued, expires: next.credentialExpires, wallNow: Date(), now: clock.now)
                    current.identity = next
                    logger.info(
                        "credential rotated; reconnecting with the new one",
                        metadata: ["steady.expiresAt": "\(next.credentialExpires.map(Timestamp.format) ?? "never")"])
                } catch let error as AgentError where error.isCredentialRefused {
                    rotation.failed(now: clock.now, refusal: error.message)
                    logger.warning(
                        """
                        cannot rotate the credential; the controller closes the stream when it expires: enrol again \
                        with a new join token before then
                        """,
                        metadata: [
                            "steady.error": "\(error)",
                            "steady.expiresAt": "\(current.identity.credentialExpires.map(Timestamp.format) ?? "")",
                        ])
                } catch {
                    rotation.failed(now: clock.now, refusal: nil)
                    logger.warning(
                        "cannot rotate the credential yet; retrying",
                        metadata: ["steady.controller": "\(client.controllerURL)", "steady.error": "\(error)"])
                }
            }
        }
    }

    /// Asks `client`'s controller for a new credential and saves it; the identity to use from now on.
    private func rotate(_ identity: AgentIdentity, at client: AgentControllerClient) async throws -> AgentIdentity {
        // The stream has a connection of its own: a rotation, rare, takes a client for itself unless one is shared.
        let http = sharedClient ?? Self.makeHTTPClient(maximumConnections: 1)
        let response: EnrollmentResponse
        do {
            let rotating = try AgentControllerClient(
                controllerURL: client.controllerURL, caPEM: identity.caPEM, http: http,
                requestTimeout: configuration.requestTimeout)
            response = try await rotating.rotate(credential: identity.credential)
        } catch {
            if sharedClient == nil { try? await http.shutdown() }
            throw error
        }
        if sharedClient == nil { try? await http.shutdown() }
        var next = identity
        next.credential = response.credential
        next.credentialIssued = Date()
        next.credentialExpires = response.expiresAt.flatMap(Timestamp.parse)
        next.isCredentialLifetimeKnown = true
        do {
            try identityStorage.saveIdentity(next)
        } catch {
            // The old credential is refused once the stream uses the new one: using it is still the better choice.
            logger.error(
                "cannot save the rotated credential; a restart before the next rotation needs a new enrolment",
                metadata: ["steady.error": "\(error)"])
        }
        return next
    }

    /// Returns when the task is cancelled.
    private static func waitForCancellation() async {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        for await _ in stream {}
        continuation.finish()
    }

    // MARK: Identity

    /// The identity to use: the configured one, the stored one, or a new one from enrolment. Nil when cancelled.
    private func resolveIdentity(http: HTTPClient) async throws -> AgentIdentity? {
        if let identity = configuration.identity { return identity }
        if let stored = try identityStorage.loadIdentity() {
            guard stored.runner == configuration.name else {
                throw AgentError(
                    code: .invalidConfiguration,
                    message: "the state directory holds the credential of runner \(stored.runner), not "
                        + "\(configuration.name); use --name \(stored.runner) or another --state-dir")
            }
            logger.debug("using the stored credential")
            return stored
        }
        guard let token = configuration.joinToken else {
            throw AgentError(
                code: .invalidConfiguration,
                message: "the agent is not enrolled yet: give --join-token (create one with `steady token create`)")
        }
        var backoff = configuration.backoff
        var failures = 0
        let controllers = configuration.controllerURLs
        guard !controllers.isEmpty else {
            throw AgentError(code: .invalidConfiguration, message: "--controller names no controller URL")
        }
        while !Task.isCancelled {
            do {
                let identity = try await enroll(
                    token: token, controllerURL: controllers[failures % controllers.count], http: http)
                try identityStorage.saveIdentity(identity)
                logger.info("enrolled", metadata: ["steady.controller": "\(configuration.controllerURL)"])
                return identity
            } catch let error as AgentError where error.isTransient {
                failures += 1
                let delay = backoff.nextDelay()
                let level: Logger.Level = failures == 1 || failures % 10 == 0 ? .warning : .debug
                logger.log(
                    level: level, "cannot enrol yet; retrying",
                    metadata: ["steady.error": "\(error)", "steady.retryIn": "\(delay.roundedToMilliseconds)"])
                try await Task.sleep(for: delay)
            }
        }
        return nil
    }

    private func enroll(token: AgentJoinToken, controllerURL: String, http: HTTPClient) async throws -> AgentIdentity {
        let caPEM: String
        if let trusted = configuration.trustedCAPEM {
            caPEM = trusted
        } else {
            // Discovery trusts nothing yet, so it cannot share the verified connection; a client of its own
            // closes its connection at once instead of leaving it idle on the controller for a minute.
            let discovery = Self.makeHTTPClient(maximumConnections: 1)
            do {
                caPEM = try await AgentControllerClient.discoverCA(
                    controllerURL: controllerURL, expectedHash: token.caHash, http: discovery,
                    timeout: configuration.requestTimeout)
            } catch {
                try? await discovery.shutdown()
                throw error
            }
            try? await discovery.shutdown()
        }
        let client = try AgentControllerClient(
            controllerURL: controllerURL, caPEM: caPEM, http: http, requestTimeout: configuration.requestTimeout)
        let request = EnrollmentRequest(
            name: configuration.name, labels: configuration.labels.isEmpty ? nil : configuration.labels,
            hostname: configuration.hostname, agentVersion: configuration.agentVersion)
        let response = try await client.enroll(token: token, request)
        guard response.runner == configuration.name else {
            throw AgentError(
                code: .unexpectedResponse,
                message: "the controller enrolled this agent as \(response.runner), not \(configuration.name)")
        }
        return AgentIdentity(
            runner: response.runner, credential: response.credential, caPEM: caPEM, controllers: token.controllers,
            credentialIssued: Date(), credentialExpires: response.expiresAt.flatMap(Timestamp.parse))
    }

    // MARK: Slice stream

    /// Connects, applies messages, sends reports, and reconnects with backoff, until cancelled or the credential
    /// is refused. With several controllers, each reconnection goes to the next one, resuming from the last
    /// acknowledged slice revision: the controllers share one store, so a revision means the same on each.
    private func followSlice(
        clients: [AgentControllerClient], identity current: CurrentIdentity, reportTrigger: ReportTrigger
    ) async throws {
        var backoff = configuration.backoff
        var failures = 0
        var next = 0
        while !Task.isCancelled {
            let client = clients[next % clients.count]
            next += 1
            let resume = await state.startConnection()
            var outcome = StreamOutcome()
            let identity = current.identity
            do {
                outcome = try await client.withStream(
                    runner: identity.runner, credential: identity.credential, revision: resume.revision,
                    digest: resume.digest
                ) { incoming, reports in
                    try await serve(
                        incoming, reports: reports, runner: identity.runner, reportTrigger: reportTrigger,
                        credential: identity.credential, current: current)
                }
                await state.setConnected(false)
                await runs?.disconnected()
            } catch let error as AgentError where error.isCredentialRefused {
                await state.setConnected(false)
                await runs?.disconnected()
                throw error
            } catch {
                await state.setConnected(false)
                await runs?.disconnected()
                if Task.isCancelled { return }
                outcome.failure = error
            }
            if outcome.isCredentialSwitch {
                // Straight back to the same controller with the new credential (which it just issued).
                next -= 1
                continue
            }
            if outcome.deliveredMessages && !outcome.isResync {
                backoff.reset()
                failures = 0
            }
            failures += 1
            let delay = backoff.nextDelay()
            let level: Logger.Level =
                outcome.isResync ? .notice : (failures == 1 || failures % 10 == 0 ? .warning : .debug)
            logger.log(
                level: level,
                outcome.isResync
                    ? "the slice does not match the controller's; reconnecting for a snapshot"
                    : "slice stream ended; reconnecting",
                metadata: [
                    "steady.controller": "\(client.controllerURL)",
                    "steady.error": "\(outcome.failure.map { "\($0)" } ?? "the controller closed the stream")",
                    "steady.retryIn": "\(delay.roundedToMilliseconds)",
                ])
            try await Task.sleep(for: delay)
        }
    }

    private struct StreamOutcome {
        var deliveredMessages = false
        var isResync = false
        /// The credential was rotated: the stream ends so that the next one uses the new credential.
        var isCredentialSwitch = false
        var failure: (any Error)?
    }

    /// Serves one connection until it ends, goes silent for too long, or needs a resync: applies the messages
    /// that arrive, and sends a report after each one that changed something and on every heartbeat.
    private func serve(
        _ incoming: NIOAsyncChannelInboundStream<ByteBuffer>, reports: AgentControllerClient.ReportWriter,
        runner: String, reportTrigger: ReportTrigger, credential: String, current: CurrentIdentity
    ) async throws -> StreamOutcome {
        let lastActivity = LastActivity()
        let idleTimeout = configuration.streamIdleTimeout
        let triggers = reportTrigger.open()
        return try await withThrowingTaskGroup(of: StreamOutcome?.self) { group in
            group.addTask {
                var outcome = StreamOutcome()
                var decoder = SliceStreamDecoder(runner: runner)
                for try await chunk in incoming {
                    lastActivity.touch()
                    for item in try decoder.items(from: chunk.readableBytesView) {
                        guard case .slice(let message) = item else {
                            if case .run(let run) = item { await self.runs?.handle(run) }
                            continue
                        }
                        let isFirst = !outcome.deliveredMessages
                        outcome.deliveredMessages = true
                        if isFirst {
                            await self.state.setConnected(true)
                            await self.runs?.connected { message in (try? await reports.send(run: message)) != nil }
                            self.logger.debug("slice stream connected", metadata: ["steady.revision": "\(message.revision)"])
                        }
                        let directive = await self.handle(message)
                        if directive != .none || isFirst { reportTrigger.pull() }
                        if directive == .resync {
                            outcome.isResync = true
                            return outcome
                        }
                    }
                }
                return outcome
            }
            group.addTask {
                for await _ in triggers {
                    guard let report = await self.state.makeReport(
                        hostname: self.configuration.hostname, agentVersion: self.configuration.agentVersion)
                    else { continue }
                    try await reports.send(report)
                }
                return nil
            }
            group.addTask {
                // Ends the stream once the credential it was opened with is replaced.
                while current.identity.credential == credential {
                    await current.changed.wait()
                    try Task.checkCancellation()
                }
                var outcome = StreamOutcome()
                outcome.isCredentialSwitch = true
                return outcome
            }
            group.addTask {
                // The watchdog: the controller sends keep-alives, so silence means a dead connection.
                while true {
                    let deadline = lastActivity.instant + idleTimeout
                    if ContinuousClock.now >= deadline {
                        throw AgentError(
                            code: .unreachable, message: "the slice stream was silent for \(idleTimeout)")
                    }
                    try await Task.sleep(until: deadline, clock: .continuous)
                }
            }
            defer {
                group.cancelAll()
                reportTrigger.close()
            }
            while let result = try await group.next() {
                if let result { return result }
            }
            return StreamOutcome()
        }
    }

    /// Applies one message: persists a new slice before it serves, and logs what changed.
    private func handle(_ message: SliceMessage) async -> SliceSynchronizer.Directive {
        let directive = await state.handle(message)
        switch directive {
        case .apply(let slice):
            do {
                try sliceStorage.saveSlice(slice)
                await state.commit(slice)
                await scheduler?.update(slice.schedule(of: configuration.name))
                logger.info(
                    "slice applied",
                    metadata: [
                        "steady.revision": "\(slice.revision)", "steady.objects": "\(slice.objects.count)",
                        "steady.digest": "\(slice.digest)",
                    ])
            } catch {
                await state.failToPersist(error)
                logger.error(
                    "cannot save the slice; serving the last good one", metadata: ["steady.error": "\(error)"])
            }
        case .report:
            let status = await state.syncStatus
            if status.isSynced {
                logger.info("slice in sync again", metadata: ["steady.revision": "\(message.revision)"])
            } else {
                logger.warning(
                    "slice not applied; serving the last good one",
                    metadata: [
                        "steady.revision": "\(message.revision)", "steady.reason": "\(status.reason ?? "")",
                        "steady.message": "\(status.message ?? "")",
                    ])
            }
        case .resync:
            let status = await state.syncStatus
            logger.warning(
                "slice digest mismatch", metadata: ["steady.message": "\(status.message ?? "")"])
        case .none:
            break
        }
        return directive
    }

    /// On the first heartbeat that finds the agent in sync: by then what start-up and the first slice ran is done.
    private func releaseStartupPagesOnceInSync() async {
        guard configuration.releasesStartupPages, !startupPagesReleased.load(ordering: .relaxed),
            await state.syncStatus.isSynced, await state.revision > 0,
            !startupPagesReleased.exchange(true, ordering: .relaxed)
        else { return }
        let mappings = ResidentPages.releaseStartupPages()
        logger.debug("start-up pages given back", metadata: ["steady.mappings": "\(mappings)"])
    }
}

/// Asks the connected stream for a report; the heartbeat and the message handler pull it, and each connection opens
/// its own stream of pulls (an `AsyncStream` ends for good when its reader is cancelled).
final class ReportTrigger: Sendable {
    private let current = Mutex<AsyncStream<Void>.Continuation?>(nil)

    /// Starts a new stream of pulls for a new connection.
    func open() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        current.withLock { $0?.finish(); $0 = continuation }
        return stream
    }

    /// Ends the current stream of pulls: its connection is gone.
    func close() {
        current.withLock { $0?.finish(); $0 = nil }
    }

    /// Asks for a report; nothing happens while no connection is open.
    func pull() {
        current.withLock { _ = $0?.yield() }
    }
}

/// The identity the agent uses now: replaced when its credential is rotated, which wakes the open stream so that it
/// reconnects with the new one.
final class CurrentIdentity: Sendable {
    private let value: Mutex<AgentIdentity>
    /// Signalled when the identity is replaced.
    let changed = WakeSignal()

    init(_ identity: AgentIdentity) {
        value = Mutex(identity)
    }

    var identity: AgentIdentity {
        get { value.withLock { $0 } }
        set {
            value.withLock { $0 = newValue }
            changed.signal()
        }
    }
}

/// When a stream last delivered bytes, shared between its reader and its watchdog.
private final class LastActivity: Sendable {
    private let value = Mutex(ContinuousClock.now)

    var instant: ContinuousClock.Instant { value.withLock { $0 } }

    func touch() { value.withLock { $0 = .now } }
}

extension Duration {
    /// `215ms` or `3.2s`, for logs.
    var roundedToMilliseconds: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        return "\(Double(milliseconds / 100) / 10)s"
    }
}
