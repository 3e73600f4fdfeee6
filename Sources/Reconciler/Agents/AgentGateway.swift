import Foundation
import Logging
import Resources
import ServiceLifecycle
import Synchronization

/// The controller's side of the agent protocol: streams each runner's slice as diffs to its connected agent, and
/// turns agent reports into Runner status.
///
/// A thin shell around ``GatewayState``, which decides; this actor does the I/O it asks for: messages on agent
/// connections, Runner status writes (one writer per runner, retried until written), credential revocations.
/// The desired state comes from the controller's shared informer, so each object is held and parsed once.
/// Nothing here polls: slices are recomputed when the informer reports a change, reports are recorded when they
/// arrive, and the only timers are for time itself (the heartbeat timeout and keep-alives).
public actor AgentGateway {
    public struct Configuration: Sendable {
        /// A runner whose reports stop for this long is marked `Connected=False`.
        public var heartbeatTimeout: Duration
        /// How often a connected runner's status is written though nothing changed, for `lastHeartbeatTime`.
        public var heartbeatWriteInterval: Duration
        /// Messages buffered per agent; an agent that falls further behind is disconnected and resyncs.
        public var bufferLimit: Int
        public var keepaliveInterval: Duration
        /// How long changes are gathered, once one arrives, before slices are recomputed.
        public var batchInterval: Duration
        /// The backoff between attempts of a Runner status write that failed.
        public var statusRetry: Backoff
        /// How many runners' statuses from reports are written at once; statuses that only a slice change
        /// changed have one writer of their own.
        public var statusWriters: Int

        public init(
            heartbeatTimeout: Duration = .seconds(15), bufferLimit: Int = 64, keepaliveInterval: Duration = .seconds(10),
            batchInterval: Duration = .milliseconds(5),
            statusRetry: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(10), jitter: 0.2),
            statusWriters: Int = 4, heartbeatWriteInterval: Duration = .seconds(60)
        ) {
            self.heartbeatTimeout = heartbeatTimeout
            self.heartbeatWriteInterval = heartbeatWriteInterval
            self.bufferLimit = bufferLimit
            self.keepaliveInterval = keepaliveInterval
            self.batchInterval = batchInterval
            self.statusRetry = statusRetry
            self.statusWriters = max(1, statusWriters)
        }
    }

    let objects: ObjectService
    public let credentials: AgentCredentials
    nonisolated let configuration: Configuration
    /// Connected runners, slices pushed, status writes failed; nil in tests that do not look.
    nonisolated let metrics: GatewayMetrics?
    /// With several controller replicas: this one's advertised URL, recorded where a scheduled run's output is.
    nonisolated let replicas: ReplicaPeers?
    let logger: Logger
    /// Which slice each runner's agent holds, for the status of Routes, Actions and Assignments.
    public nonisolated let syncIndex = RunnerSyncIndex()
    /// The desired state; run by this gateway only when it was not given the controller's.
    let informer: SharedInformer
    private let runsInformer: Bool
    private var state: GatewayState
    private var connections: [UUID: any SliceConnection] = [:]
    private let clock = ContinuousClock()

    /// Creates a gateway following `informer` (the controller's shared one); without one it lists and watches the
    /// store itself.
    public init(
        objects: ObjectService, credentials: AgentCredentials, configuration: Configuration = Configuration(),
        metrics: GatewayMetrics? = nil, informer: SharedInformer? = nil, replicas: ReplicaPeers? = nil,
        logger: Logger
    ) {
        self.replicas = replicas
        self.objects = objects
        self.credentials = credentials
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.informer = informer ?? SharedInformer(store: objects.store, logger: logger)
        self.runsInformer = informer == nil
        self.state = GatewayState(
            configuration: .init(
                heartbeatTimeout: configuration.heartbeatTimeout,
                heartbeatWriteInterval: configuration.heartbeatWriteInterval))
    }

    /// The longest a live replica holding a connected runner's agent goes without writing its heartbeat: the
    /// heartbeat write interval, plus the heartbeat timeout within which the agent reports, and as much again for
    /// a write that a busy store delays.
    public nonisolated var heartbeatSilence: Duration {
        GatewayState.Configuration(
            heartbeatTimeout: configuration.heartbeatTimeout,
            heartbeatWriteInterval: configuration.heartbeatWriteInterval
        ).heartbeatSilence
    }

    // MARK: Running

    /// Follows the desired state and the agents' reports until graceful shutdown or cancellation.
    public func run() async throws {
        informer.subscribe { [weak self] update in self?.receive(update) }
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                if self.runsInformer { group.addTask { try await self.informer.run() } }
                group.addTask { await self.followDesiredState() }
                group.addTask { await self.takeReports() }
                group.addTask { await self.writeStatuses() }
                group.addTask { await self.writeSliceChangeStatuses() }
                group.addTask { try await self.watchForSilence() }
                group.addTask { try await self.watchForCredentialExpiry() }
                group.addTask { try await self.sendKeepalives() }
                group.addTask { await self.credentials.followStore() }
                try await group.next()
                group.cancelAll()
            }
        }
        await perform(state.allConnections())
    }

    /// Changes from the informer, handed over on its task in order; applied by the gateway soon after.
    private nonisolated let updates = Mailbox<InformerUpdate>()

    private nonisolated func receive(_ update: InformerUpdate) {
        updates.post(update)
    }

    /// Applies the informer's changes as they come, and recomputes slices once a batch has gathered.
    private func followDesiredState() async {
        for await _ in updates.arrivals {
            await applyPendingUpdates()
            guard state.isDirty else { continue }
            // Changes come in bursts (an apply of many objects): gather the rest of the burst, then plan once.
            try? await clock.sleep(for: configuration.batchInterval)
            await applyPendingUpdates()
            await recompute()
        }
    }

    private func applyPendingUpdates() async {
        for update in updates.take() {
            let watched = state.storedHeartbeats.count
            await perform(state.apply(update, now: clock.now))
            // A runner newly stored as connected (by another controller, or before a restart) is one to watch too.
            if state.storedHeartbeats.count > watched { runnerConnected.continuation.yield() }
        }
    }

    private func recompute() async {
        await perform(state.recompute(now: clock.now), statusLane: .sliceChange)
    }

    /// Reports from agent streams, handed over on the event loops: the newest per runner, so that an agent
    /// sending faster than they are recorded costs one entry rather than a growing queue.
    private nonisolated let pendingReports = Mutex<[String: AgentReport]>([:])
    private nonisolated let reportsArrived = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// Hands over a report from an agent stream; the gateway records it soon after.
    public nonisolated func receive(runner: String, report: AgentReport) {
        let report = stamped(report)
        let wasEmpty = pendingReports.withLock { pending in
            defer { pending[runner] = report }
            return pending.isEmpty
        }
        if wasEmpty { reportsArrived.continuation.yield() }
    }

    private func takeReports() async {
        for await _ in reportsArrived.stream {
            let arrived = pendingReports.withLock { pending in
                defer { pending = [:] }
                return pending
            }
            for (runner, received) in arrived { await perform(state.record(runner: runner, received, now: clock.now)) }
        }
    }

    /// Marks runners whose agent fell silent, waking when the first of them would, never on a tick. Runners that
    /// fall silent one after another (agents that connected in a wave) are marked in passes at most a
    /// fifteenth of the heartbeat timeout apart (a second, by default), since each pass looks at every runner.
    private func watchForSilence() async throws {
        let spacing = configuration.heartbeatTimeout / 15
        var lastPass: ContinuousClock.Instant?
        while !Task.isCancelled {
            if let deadline = state.nextSilenceDeadline() {
                try await clock.sleep(until: lastPass.map { max(deadline, $0 + spacing) } ?? deadline)
                lastPass = clock.now
                await perform(state.expireSilentRunners(now: clock.now))
            } else {
                // No runner is written as connected: nothing can go silent until one is.
                var connected = runnerConnected.stream.makeAsyncIterator()
                guard await connected.next() != nil else { return }
            }
        }
    }

    private nonisolated let runnerConnected = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// Closes each stream the moment its credential expires: a timer at the first expiry, re-armed when a stream
    /// with an earlier one opens; never a poll.
    private func watchForCredentialExpiry() async throws {
        while !Task.isCancelled {
            let deadline = state.nextCredentialExpiry()
            credentialTimer = deadline
            await withTaskGroup(of: Void.self) { group in
                if let deadline { group.addTask { [clock] in try? await clock.sleep(until: deadline) } }
                group.addTask { [earlierExpiry] in await earlierExpiry.wait() }
                await group.next()
                group.cancelAll()
            }
            try Task.checkCancellation()
            await perform(state.expireCredentials(now: clock.now))
        }
    }

    /// The instant the expiry timer is set for; nil when no open stream's credential expires.
    private var credentialTimer: ContinuousClock.Instant?
    /// Signalled when a stream opens whose credential expires before ``credentialTimer``.
    private nonisolated let earlierExpiry = WakeSignal()

    /// Sends every open stream a keep-alive, from one loop rather than a timer per connection; a stream whose
    /// agent went away is found and dropped here.
    private func sendKeepalives() async throws {
        while !Task.isCancelled {
            try await clock.sleep(for: configuration.keepaliveInterval)
            await perform(state.keepalives())
        }
    }

    // MARK: Carrying out directives

    /// Carries out `directives`; the status writes they ask for go in `statusLane`.
    private func perform(
        _ directives: [GatewayState.Directive], statusLane: StatusWriteQueue<RunnerStatus>.Lane = .report
    ) async {
        for directive in directives {
            switch directive {
            case .send(let message, let runner, let id):
                guard let connection = connections[id] else { continue }
                switch connection.send(message) {
                case .queued:
                    break
                case .overflowed:
                    logger.notice("agent too slow; disconnected to resync", metadata: ["steady.runner": "\(runner)"])
                    await perform(state.connectionFailed(runner: runner, connection: id, overflowed: true))
                case .closed:
                    forget(connection: id)?.close()
                    await perform(state.connectionFailed(runner: runner, connection: id, overflowed: false))
                    noteConnections(of: runner)
                }
            case .close(let runner, let id):
                forget(connection: id)?.close()
                noteConnections(of: runner)
            case .writeUnheard(let runner, let status):
                logger.notice(
                    "runner marked disconnected: its heartbeat stood still and no controller holds its agent",
                    metadata: ["steady.runner": "\(runner)"])
                if case .reportWriter = statusQueue.post(status, runner: runner, lane: .report) {
                    statusWriters.continuation.yield(runner)
                }
            case .writeStatus(let runner, let status):
                if status.isConnected { runnerConnected.continuation.yield() }
                switch statusQueue.post(status, runner: runner, lane: statusLane) {
                case .none: break
                case .reportWriter: statusWriters.continuation.yield(runner)
                case .sliceChangeWriter: sliceChangeStatuses.continuation.yield()
                }
            case .revokeCredential(let runner):
                await credentials.revoke(runner: runner)
                logger.notice(
                    "runner deleted: its agent's credential is revoked and its stream closed",
                    metadata: ["steady.runner": "\(runner)"])
            case .recordHeld(let runner, let slice):
                syncIndex.set(runner: runner, holds: slice)
            case .closeExpired(let runner, let id, let expired):
                // A stream its agent left already (it reconnected with a rotated credential) just goes.
                guard let connection = forget(connection: id), connection.isOpen else {
                    noteConnections(of: runner)
                    continue
                }
                let reason = "credential expired at \(Timestamp.format(expired))"
                logger.notice(
                    "agent stream closed: its \(reason)",
                    metadata: ["steady.runner": "\(runner)", "steady.expiredAt": "\(Timestamp.format(expired))"])
                connection.close(
                    refusing: AgentStreamRefusal(
                        refused: 401,
                        message: "Unauthorized: \(AgentCredentialRecord.expiredReason(runner: runner, at: expired))",
                        reason: AgentStreamRefusal.credentialExpired))
                noteConnections(of: runner)
            }
        }
    }

    /// Tells the connection observer when a runner gains its first stream or loses its last.
    private func noteConnections(of runner: String) {
        let isConnected = !(state.runners[runner]?.connections.isEmpty ?? true)
        guard isConnected != connectedRunners.contains(runner) else { return }
        if isConnected { connectedRunners.insert(runner) } else { connectedRunners.remove(runner) }
        let observer = hooks.withLock { $0.connections }
        observer?(runner, isConnected)
    }

    private var connectedRunners: Set<String> = []

    /// Who hears of runner streams opening and closing, and of run messages from agents (the RemoteRun
    /// dispatcher); set once, before agents connect.
    private nonisolated let hooks = Mutex<Hooks>(Hooks())

    struct Hooks {
        var connections: (@Sendable (_ runner: String, _ isConnected: Bool) -> Void)?
        var runMessages: (@Sendable (_ runner: String, _ message: RunAgentMessage) -> Void)?
    }

    /// Calls `observer` whenever a runner's first stream opens or its last one closes.
    public nonisolated func observeConnections(_ observer: @escaping @Sendable (String, Bool) -> Void) {
        hooks.withLock { $0.connections = observer }
    }

    /// Calls `handler` with each run message an agent sends on its stream.
    public nonisolated func handleRunMessages(_ handler: @escaping @Sendable (String, RunAgentMessage) -> Void) {
        hooks.withLock { $0.runMessages = handler }
    }

    /// Hands over a run message from `runner`'s stream (on the event loop); dropped when no dispatcher listens.
    public nonisolated func receive(runner: String, run message: RunAgentMessage) {
        let handler = hooks.withLock { $0.runMessages }
        handler?(runner, message)
    }

    /// Sends a run message on every stream `runner`'s agent holds; false when it holds none.
    public func send(run message: RunControllerMessage, to runner: String) async -> Bool {
        guard state.runners[runner]?.connections.isEmpty == false, let line = try? message.line() else { return false }
        return await send(line: line, to: runner)
    }

    /// Sends one encoded run message line (`RunControllerMessage.line()`) on every stream `runner`'s agent holds,
    /// for a message sent to many runners alike; false when it holds none.
    public func send(line: [UInt8], to runner: String) async -> Bool {
        guard let ids = state.runners[runner]?.connections, !ids.isEmpty else { return false }
        var isSent = false
        for id in ids {
            switch connections[id]?.send(line: line) {
            case .queued?:
                isSent = true
            case .overflowed?:
                logger.notice("agent too slow; disconnected to resync", metadata: ["steady.runner": "\(runner)"])
                await perform(state.connectionFailed(runner: runner, connection: id, overflowed: true))
            case .closed?, nil:
                forget(connection: id)?.close()
                await perform(state.connectionFailed(runner: runner, connection: id, overflowed: false))
            }
        }
        noteConnections(of: runner)
        return isSent
    }

    /// Hangs up every stream of `runner` (an agent that broke the protocol); it reconnects and resyncs.
    public func disconnect(runner: String) async {
        for id in state.runners[runner]?.connections ?? [] {
            forget(connection: id)?.close()
            await perform(state.connectionFailed(runner: runner, connection: id, overflowed: false))
        }
        noteConnections(of: runner)
    }

    /// Drops a connection from the table; nil when it was gone already.
    private func forget(connection id: UUID) -> (any SliceConnection)? {
        guard let connection = connections.removeValue(forKey: id) else { return nil }
        metrics?.runnerDisconnected()
        return connection
    }

    // MARK: Runner status

    /// Which Runner statuses are to be written, in which lane (see `StatusWriteQueue`).
    private var statusQueue = StatusWriteQueue<RunnerStatus>()
    /// Callers of `report` waiting until their runner's status is written.
    private var statusWritten: [String: [CheckedContinuation<Void, Never>]] = [:]
    private nonisolated let statusWriters = AsyncStream<String>.makeStream()
    private nonisolated let sliceChangeStatuses = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// Writes report-lane statuses a few runners at a time, so that the writes share the store's transactions
    /// without a burst of a thousand reports taking the cores from the slice streams.
    private func writeStatuses() async {
        await withTaskGroup(of: Void.self) { group in
            var writers = 0
            for await runner in statusWriters.stream {
                if writers == configuration.statusWriters {
                    await group.next()
                    writers -= 1
                }
                group.addTask { await self.writeUntilCurrent(runner: runner) }
                writers += 1
            }
        }
    }

    /// Writes slice-change statuses one runner at a time, oldest first.
    private func writeSliceChangeStatuses() async {
        for await _ in sliceChangeStatuses.stream {
            while let runner = statusQueue.takeSliceChange() { await writeUntilCurrent(runner: runner) }
        }
    }

    /// Writes the runner's pending status until none is left, retrying a failed write with backoff (a newer
    /// status, if one came meanwhile, is written instead).
    private func writeUntilCurrent(runner: String) async {
        defer {
            for waiter in statusWritten.removeValue(forKey: runner) ?? [] { waiter.resume() }
        }
        var failures = 0
        while let status = statusQueue.next(for: runner) {
            do {
                try await write(status, runner: runner)
                failures = 0
            } catch {
                // Shutting down: the status is written again by whichever controller serves the runner next.
                if Task.isCancelled || error is CancellationError {
                    statusQueue.abandon(runner: runner)
                    return
                }
                metrics?.statusWriteFailed()
                logger.warning(
                    "cannot write runner status; retrying",
                    metadata: ["steady.runner": "\(runner)", "steady.error": "\(error)", "steady.attempt": "\(failures + 1)"])
                statusQueue.retry(status, runner: runner)
                do {
                    try await clock.sleep(for: configuration.statusRetry.jitteredDelay(attempt: failures))
                } catch {
                    statusQueue.abandon(runner: runner)
                    return
                }
                failures += 1
            }
        }
    }

    private func write(_ status: RunnerStatus, runner: String) async throws {
        let heartbeat = status.isConnected ? Timestamp.now() : nil
        // False when the Runner is gone: nothing to write, and nothing to retry.
        _ = try await objects.updateStatus(
            Kinds.runner, name: runner, options: WriteOptions(fieldManager: "steady-agent-gateway")
        ) { current in
            try status.merged(into: current, heartbeatTime: heartbeat)
        }
    }

    // MARK: Agents

    /// Opens an agent's slice stream from the revision and digest it holds.
    public func connect(runner: String, revision: Int64, digest: String?) async -> AsyncStream<SliceMessage> {
        let (stream, continuation) = AsyncStream<SliceMessage>.makeStream(
            bufferingPolicy: .bufferingOldest(configuration.bufferLimit))
        await attach(runner: runner, revision: revision, digest: digest, connection: StreamSliceConnection(continuation))
        return stream
    }

    /// Serves `runner`'s slice on `connection`, starting from what the agent holds (see `GatewayState.attach`),
    /// until `credentialExpiry` (wall clock; nil: the credential does not expire), when the stream is closed.
    public func attach(
        runner: String, revision: Int64, digest: String?, connection: any SliceConnection,
        credentialExpiry: Date? = nil
    ) async {
        let id = UUID()
        connections[id] = connection
        metrics?.runnerConnected()
        // The timer runs on the monotonic clock, from the time left now: a step of the wall clock does not move it.
        let expiry = credentialExpiry.map { date in
            GatewayState.CredentialExpiry(
                runner: runner, instant: clock.now + .milliseconds(Int64(date.timeIntervalSinceNow * 1000)),
                wallClock: date)
        }
        await perform(
            state.attach(runner: runner, revision: revision, digest: digest, connection: id, credentialExpiry: expiry))
        if let expiry, credentialTimer.map({ expiry.instant < $0 }) ?? true { earlierExpiry.signal() }
        noteConnections(of: runner)
    }

    /// Records a report (heartbeat and sync status) and returns once the Runner's status says what it changed.
    public func report(runner: String, _ report: AgentReport) async {
        await perform(state.record(runner: runner, stamped(report), now: clock.now))
        guard statusQueue.writing.contains(runner) else { return }
        await withCheckedContinuation { statusWritten[runner, default: []].append($0) }
    }

    /// `report` with its scheduled run's `outputReplica` set to this replica (with several replicas; none otherwise),
    /// whatever the agent sent: the output of a run it reports comes on its stream here.
    private nonisolated func stamped(_ report: AgentReport) -> AgentReport {
        guard report.lastRun != nil else { return report }
        var report = report
        report.lastRun?.outputReplica = replicas?.url
        return report
    }

    /// Whether an agent reported recently: a name held by a live agent cannot be enrolled again.
    public func isLive(runner: String) -> Bool {
        state.isLive(runner: runner, now: clock.now)
    }

    /// Which runners hold the objects in their slice (or are the objects), and whether each agent has
    /// applied a slice computed from at least `revision`.
    public func convergence(_ request: ConvergenceRequest) -> ConvergenceReport {
        state.convergence(request, now: clock.now)
    }
}

extension AgentGateway: Service {}

extension AgentGateway {
    /// Enrols a runner whose caller is already trusted (a checked join token, or `steady up`'s own runner):
    /// adopts a Runner declared beforehand (its labels win) or creates one with `labels`, then issues its
    /// credential. The Runner is created without field ownership, so applying manifests later takes over.
    public func enrollRunner(name: String, labels: [String: String]) async throws -> String {
        try await enroll(name: name, labels: labels).credential
    }

    /// As ``enrollRunner(name:labels:)``, with the new credential's expiry.
    public func enroll(name: String, labels: [String: String]) async throws -> AgentCredentials.Issued {
        do {
            _ = try await objects.get(Kinds.runner, name: name)
        } catch {
            guard error.reason == .notFound else { throw error }
            var metadata: JSONValue = ["name": .string(name)]
            if !labels.isEmpty { metadata["labels"] = .object(labels.mapValues(JSONValue.string)) }
            _ = try await objects.create(
                Kinds.runner, body: ["apiVersion": .string(API.apiVersion), "kind": "Runner", "metadata": metadata],
                options: WriteOptions(fieldManager: "steady-agent", recordsOwnership: false))
        }
        return try await credentials.issue(runner: name)
    }
}
