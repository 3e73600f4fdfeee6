import Foundation
import Logging
import Resources
import ServiceLifecycle
import Synchronization

/// Where run output goes on the controller: outside the RemoteRun object, bounded per runner.
public protocol RunOutputSink: Sendable {
    func append(run: String, runner: String, stream: RunOutputStream, bytes: [UInt8])
    /// `bytes` of `runner`'s output were dropped here by its agent: the log shows a gap.
    func drop(run: String, runner: String, bytes: Int64)
    func finish(run: String, runner: String)
    /// Every runner of the run is done: followers of the whole run end.
    func complete(run: String)
    func delete(run: String)
    /// The runners with output kept for `run`.
    func runners(run: String) -> [String]
}

extension RunOutputStore: RunOutputSink {}

/// Carries RemoteRuns out: the shell around one ``RunDispatch`` per run under way.
///
/// It follows RemoteRuns through the controller's shared informer; a run whose targets resolved (`Ready=True`) is
/// taken up, its requests go down each runner's agent stream through the ``AgentGateway``, and what the agents send
/// back (accepted, started, output, result, refused) becomes `status.results`, `counts`, `phase` and the
/// `Complete`/`Failed` conditions, written through the status subresource. Output goes to a ``RunOutputSink``.
///
/// An agent may report only on runs dispatched to its own runner: anything else closes its stream. A result for a
/// run the controller no longer follows (deleted, or finished before a restart) is acknowledged and dropped, so the
/// agent's ledger can forget it.
///
/// With several controller replicas, every replica follows every run, but a runner's agent reports to the one it is
/// connected to. That replica records itself as the runner's `outputReplica` (where its output is kept); the others
/// take from the stored status that the runner runs there (``RunDispatch/Event/runningElsewhere(_:)``: no deadline
/// here) and the final phase recorded there (``RunDispatch/Event/recorded(_:_:)``). A status write never moves a
/// runner's stored result back (a final phase stays, a running one is not made pending again) and never changes a
/// run the store shows finished.
///
/// If that replica and the runner's agent both die, nobody would record the runner's end. So every replica watches
/// the runner's heartbeat in the store (its Runner's `lastHeartbeatTime`, written at least every
/// ``AgentGateway/heartbeatSilence`` by whichever live replica holds its agent): a runner running elsewhere that
/// shows no fresh one for that long (and never less than `deliveryTimeout`) is `Unreachable` with reason
/// `ReplicaLost`. A result its agent reports later, to any replica, replaces that guess while the run is under way.
public actor RunDispatcher: Service {
    /// One run under way.
    struct ActiveRun {
        let name: String
        let uid: String
        let spec: RemoteRunSpec
        var dispatch: RunDispatch
        /// What agents reported beyond the phase: exit code, signal, times, output size. Change it through
        /// ``updateDetail(_:_:)``, which drops the runner's encoded result.
        var details: [String: RemoteRunSpec.RunnerResult] = [:]
        /// Each runner's result as written last, with the phase it was encoded with: a status write encodes only
        /// the results that changed since, not all of them.
        var encoded: [String: (phase: RemoteRunSpec.Phase, value: JSONValue)] = [:]
        var startTime: String?
        var completionTime: String?

        /// Changes what is recorded of `runner`; its result is encoded again at the next status write.
        mutating func updateDetail(_ runner: String, _ change: (inout RemoteRunSpec.RunnerResult) -> Void) {
            change(&details[runner, default: .init(runner: runner, phase: dispatch.phase(of: runner) ?? .pending)])
            encoded[runner] = nil
        }

        /// `status.results` in target order, encoding only the results that changed since the last call.
        mutating func encodeResults() throws -> [JSONValue] {
            try dispatch.phases.map { runner, phase in
                if let cached = encoded[runner], cached.phase == phase { return cached.value }
                var result = details[runner] ?? .init(runner: runner, phase: phase)
                result.phase = phase
                let value = try JSONValue(encoding: result)
                encoded[runner] = (phase, value)
                return value
            }
        }
    }

    private enum Input {
        case update(InformerUpdate)
        case connection(runner: String, isConnected: Bool)
        case message(runner: String, RunAgentMessage)
        case timePassed
    }

    let objects: ObjectService
    let gateway: AgentGateway
    let informer: SharedInformer
    let output: (any RunOutputSink)?
    /// With several controller replicas: this one's advertised URL, recorded as where its runners' output is.
    let replicas: ReplicaPeers?
    /// How long a runner running on another replica may show no heartbeat in the store before it is `ReplicaLost`.
    let silenceTimeout: TimeInterval
    let logger: Logger
    private var runs: [String: ActiveRun] = [:]
    /// Runs whose status must be written.
    private var unwritten: Set<String> = []
    /// When each run's status was last written. A run under way is written at most once per
    /// ``statusWriteInterval(runners:)``, since every write carries all its results; a run that completes is written
    /// at once.
    private var lastStatusWrite: [String: Date] = [:]

    /// How long a run under way waits between status writes: 0.2 s, and 1 ms more per runner beyond 200, since a
    /// write costs in proportion to its results (read, validated, stored and sent to every watcher whole); so the
    /// cost of a large run's status stays in proportion to its duration, not to its runners times its duration.
    static func statusWriteInterval(runners: Int) -> TimeInterval {
        0.2 + Double(max(0, runners - 200)) * 0.001
    }
    private var connected: Set<String> = []
    private let inputs = Mailbox<Input>()
    private let deadlinesChanged = WakeSignal()
    /// What happens to a finished run later: deleted after `ttlSecondsAfterFinished`, and its output dropped
    /// after ``outputGrace`` unless `keepOutput` is set. Rebuilt from the informer after a restart.
    private struct Expiry {
        var name: String
        var deleteRunAt: Date?
        var dropOutputAt: Date?
        var first: Date? { [deleteRunAt, dropOutputAt].compactMap { $0 }.min() }
    }

    /// Finished runs with something still to do, by UID.
    private var expiries: [String: Expiry] = [:]
    /// How long the output of a run without `keepOutput` stays after it finishes: long enough for a `steady run`
    /// or `steady logs -f` that attached late to read it.
    static let outputGrace: TimeInterval = 60

    public init(
        objects: ObjectService, gateway: AgentGateway, informer: SharedInformer, output: (any RunOutputSink)?,
        replicas: ReplicaPeers? = nil, logger: Logger
    ) {
        self.replicas = replicas
        self.objects = objects
        self.gateway = gateway
        self.informer = informer
        self.output = output
        self.logger = logger
        let silence = gateway.heartbeatSilence.components
        silenceTimeout = Double(silence.seconds) + Double(silence.attoseconds) / 1e18
    }

    public func run() async throws {
        gateway.observeConnections { [weak self] runner, isConnected in
            self?.enqueue(.connection(runner: runner, isConnected: isConnected))
        }
        gateway.handleRunMessages { [weak self] runner, message in self?.enqueue(.message(runner: runner, message)) }
        // With several replicas, Runner heartbeats say whether a runner running on another one is still in hand.
        let followsHeartbeats = replicas != nil
        informer.subscribe { [weak self] update in
            guard
                update.changes.contains(where: {
                    $0.key.kind == RemoteRunSpec.kind
                        || followsHeartbeats && $0.key.kind == RunnerSpec.kind && Self.isFreshHeartbeat($0)
                })
            else { return }
            self?.enqueue(.update(update))
        }
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.followInputs() }
                group.addTask { await self.keepTime() }
            }
        }
    }

    private nonisolated func enqueue(_ input: Input) {
        inputs.post(input)
    }

    private func followInputs() async {
        for await _ in inputs.arrivals {
            for input in inputs.take() { await handle(input) }
            await writeStatuses()
            deadlinesChanged.signal()
        }
    }

    /// Deadlines (timeouts, delivery timeouts, `ttlSecondsAfterFinished`) are decided on this clock, which a step
    /// of the system clock does not move while the controller runs; the times it records come from it too, so that
    /// a deadline derived from a recorded start agrees with it.
    private let clock = AnchoredWallClock()

    private func currentTime() -> Date {
        Date(timeIntervalSince1970: Double(clock.milliseconds()) / 1000)
    }

    /// Wakes at the first delivery deadline of any run, or sooner when the deadlines changed (a run taken up may
    /// have an earlier one); with no deadline it waits for a change, without a timer.
    private func keepTime() async {
        while !Task.isCancelled {
            let deadline = earliestDeadline()
            await deadlinesChanged.wait(
                until: deadline.map { deadline in
                    ContinuousClock.now + .milliseconds(Int64(max(deadline.timeIntervalSince(currentTime()), 0) * 1000))
                })
            if let deadline, deadline <= currentTime() { enqueue(.timePassed) }
        }
    }

    private func earliestDeadline() -> Date? {
        let writes = unwritten.compactMap { uid in
            lastStatusWrite[uid]?.addingTimeInterval(
                Self.statusWriteInterval(runners: runs[uid]?.dispatch.runners.count ?? 0))
        }
        return (runs.values.compactMap(\.dispatch.nextDeadline) + expiries.values.compactMap(\.first) + writes).min()
    }

    // MARK: Inputs

    private func handle(_ input: Input) async {
        let now = currentTime()
        switch input {
        case .update(let update):
            for change in update.changes {
                if change.key.kind == RemoteRunSpec.kind {
                    await follow(change, now: now)
                    noteExpiry(change)
                } else if change.key.kind == RunnerSpec.kind, Self.isFreshHeartbeat(change) {
                    await noteHeartbeat(of: change.key.name, now: now)
                }
            }
        case .connection(let runner, let isConnected):
            if isConnected { connected.insert(runner) } else { connected.remove(runner) }
            for uid in runs.keys where runs[uid]?.dispatch.phase(of: runner) != nil {
                await apply(isConnected ? .connected(runner) : .disconnected(runner), to: uid, now: now)
            }
        case .message(let runner, let message):
            await receive(message, from: runner, now: now)
        case .timePassed:
            for (uid, run) in runs where (run.dispatch.nextDeadline.map { $0 <= now } ?? false) {
                await apply(.timePassed, to: uid, now: now)
            }
            await deleteExpiredRuns(now: now)
        }
    }

    /// Whether `change` is a heartbeat of a connected runner: a new `lastHeartbeatTime` with `Connected=True`.
    static func isFreshHeartbeat(_ change: ObjectChange) -> Bool {
        guard let status = change.new?["status"],
            let heartbeat = status["lastHeartbeatTime"], heartbeat != change.old?["status"]?["lastHeartbeatTime"]
        else { return false }
        return RunnerStatus.saysConnected(status)
    }

    /// A runner's agent is connected to a live replica: its runs running elsewhere are still in hand there. Writes
    /// nothing unless a deadline passed meanwhile.
    private func noteHeartbeat(of runner: String, now: Date) async {
        // The keys taken first: changing a run while iterating the dictionary would copy every run.
        for uid in runs.keys.filter({ runs[$0]?.dispatch.phase(of: runner) == .running }) {
            guard let directives = runs[uid]?.dispatch.handle(.agentSeen(runner), now: now), !directives.isEmpty
            else { continue }
            await perform(directives, for: uid)
            unwritten.insert(uid)
        }
    }

    /// Takes up a RemoteRun that became Ready, stops one that was suspended or deleted.
    private func follow(_ change: ObjectChange, now: Date) async {
        guard let object = change.new else {
            guard let uid = change.old?["metadata"]?["uid"]?.stringValue, runs[uid] != nil else { return }
            await apply(.stopped(reason: "Deleted"), to: uid, now: now)
            runs[uid] = nil
            unwritten.remove(uid)
            // Nothing of a deleted run stays behind: its status is never written, so these would not be cleared.
            lastStatusWrite[uid] = nil
            acknowledgements[uid] = nil
            output?.delete(run: uid)
            return
        }
        guard let uid = object["metadata"]?["uid"]?.stringValue, let name = object["metadata"]?["name"]?.stringValue,
            let spec = try? object["spec"]?.decode(as: RemoteRunSpec.self)
        else { return }
        if runs[uid] != nil {
            if spec.suspend == true { await apply(.stopped(reason: "Suspended"), to: uid, now: now) }
            await adoptRecordedResults(of: object, uid: uid, now: now)
            return
        }
        let status = object["status"]
        let phase = status?["phase"]?.stringValue.flatMap(RemoteRunSpec.Phase.init(rawValue:)) ?? .pending
        let conditions = (status?["conditions"]?.arrayValue ?? []).compactMap { try? $0.decode(as: Condition.self) }
        guard !phase.isFinal, conditions[type: "Ready"]?.status == .true,
            conditions[type: "Ready"]?.observedGeneration == object["metadata"]?["generation"]?.intValue
        else { return }
        let results = (status?["results"]?.arrayValue ?? []).compactMap {
            try? $0.decode(as: RemoteRunSpec.RunnerResult.self)
        }
        var dispatch = RunDispatch(
            runners: results.map(\.runner),
            policy: RunDispatch.Policy(spec: spec, silenceTimeout: silenceTimeout, sharesWindow: replicas != nil),
            connected: connected)
        dispatch.restore(finished: Dictionary(results.map { ($0.runner, $0.phase) }, uniquingKeysWith: { a, _ in a }))
        var run = ActiveRun(name: name, uid: uid, spec: spec, dispatch: dispatch)
        run.details = Dictionary(results.map { ($0.runner, $0) }, uniquingKeysWith: { a, _ in a })
        run.startTime = status?["startTime"]?.stringValue ?? Timestamp.format(currentTime())
        runs[uid] = run
        logger.info(
            "remote run taken up",
            metadata: ["steady.remoterun": "\(name)", "steady.runners": "\(results.count)"])
        if spec.suspend == true {
            await apply(.stopped(reason: "Suspended"), to: uid, now: now)
        } else {
            await perform(runs[uid]?.dispatch.start(now: now) ?? [], for: uid)
            await adoptRecordedResults(of: object, uid: uid, now: now)
        }
        unwritten.insert(uid)
    }

    /// Takes what other replicas recorded in the stored status (with several replicas, a runner's agent reports to
    /// one of them): a runner running there (its result names another `outputReplica`) is neither timed out nor
    /// dispatched again here, and a final phase recorded there is taken, so this replica completes the run as that
    /// one does; so is a result an agent reported there for a runner given up here as `ReplicaLost`. Carries out
    /// what follows (a freed slot's dispatch, the run's completion); writes only then.
    private func adoptRecordedResults(of object: JSONValue, uid: String, now: Date) async {
        guard let own = replicas?.url else { return }
        var directives: [RunDispatch.Directive] = []
        for value in object["status"]?["results"]?.arrayValue ?? [] {
            guard let recorded = try? value.decode(as: RemoteRunSpec.RunnerResult.self),
                let ours = runs[uid]?.dispatch.phase(of: recorded.runner),
                !ours.isFinal
                    || runs[uid]?.details[recorded.runner]?.reason == Self.replicaLost && recorded.phase.isFinal
                        && recorded.phase != .unreachable
            else { continue }
            let event: RunDispatch.Event
            if recorded.phase == .unreachable && recorded.reason == Self.replicaLost {
                event = .recordedReplicaLost(recorded.runner)
                output?.finish(run: uid, runner: recorded.runner)
            } else if recorded.phase.isFinal {
                event = .recorded(recorded.runner, recorded.phase)
                // Its output is not coming here: followers of it here end.
                output?.finish(run: uid, runner: recorded.runner)
            } else if recorded.phase == .running, let holder = recorded.outputReplica, holder != own,
                ours != .running || runs[uid]?.details[recorded.runner] != recorded
            {
                event = .runningElsewhere(recorded.runner)
            } else {
                continue
            }
            runs[uid]?.details[recorded.runner] = recorded
            runs[uid]?.encoded[recorded.runner] = nil
            directives += runs[uid]?.dispatch.handle(event, now: now) ?? []
        }
        guard !directives.isEmpty else { return }
        await perform(directives, for: uid)
        unwritten.insert(uid)
    }

    /// Keeps what is due for a finished run: its deletion (`ttlSecondsAfterFinished` after its completion) and
    /// the dropping of output it did not ask to keep.
    private func noteExpiry(_ change: ObjectChange) {
        guard let uid = (change.new ?? change.old)?["metadata"]?["uid"]?.stringValue else { return }
        guard let object = change.new, let name = object["metadata"]?["name"]?.stringValue,
            let phase = object["status"]?["phase"]?.stringValue.flatMap(RemoteRunSpec.Phase.init(rawValue:)),
            phase.isFinal, let completion = object["status"]?["completionTime"]?.stringValue.flatMap(Timestamp.parse)
        else {
            expiries[uid] = nil
            return
        }
        let ttl = object["spec"]?["ttlSecondsAfterFinished"]?.intValue
        let keepsOutput = object["spec"]?["keepOutput"]?.boolValue == true
        let expiry = Expiry(
            name: name, deleteRunAt: ttl.map { completion.addingTimeInterval(TimeInterval($0)) },
            dropOutputAt: keepsOutput || output?.runners(run: uid).isEmpty != false
                ? nil : completion.addingTimeInterval(Self.outputGrace))
        expiries[uid] = expiry.first == nil ? nil : expiry
    }

    /// Drops the output that was not to be kept, and deletes the finished runs whose TTL has passed (only the run
    /// with that UID, so a run created again under the same name is left alone).
    private func deleteExpiredRuns(now: Date) async {
        for (uid, expiry) in expiries {
            if let drop = expiry.dropOutputAt, drop <= now {
                output?.delete(run: uid)
                expiries[uid]?.dropOutputAt = nil
            }
            guard let due = expiry.deleteRunAt, due <= now else {
                if expiries[uid]?.first == nil { expiries[uid] = nil }
                continue
            }
            expiries[uid] = nil
            do {
                let current = try await objects.get(Kinds.remoteRun, name: expiry.name)
                guard current["metadata"]?["uid"]?.stringValue == uid else { continue }
                let revision = current["metadata"]?["resourceVersion"]?.stringValue.flatMap { Int64($0) }
                _ = try await objects.delete(
                    Kinds.remoteRun, name: expiry.name, expectedRevision: revision,
                    options: WriteOptions(fieldManager: "steady-remoterun"))
                logger.info("finished remote run deleted after its TTL", metadata: ["steady.remoterun": "\(expiry.name)"])
            } catch {
                if error.reason == .notFound { continue }
                // Changed meanwhile, or the store is busy: try again shortly.
                expiries[uid] = Expiry(name: expiry.name, deleteRunAt: now.addingTimeInterval(5))
                logger.info(
                    "cannot delete an expired remote run yet",
                    metadata: ["steady.remoterun": "\(expiry.name)", "steady.error": "\(error)"])
            }
        }
    }

    private func receive(_ message: RunAgentMessage, from runner: String, now: Date) async {
        let uid = message.runUID
        // Only the name is taken out: a copy of the run held while it changes below would be copied whole.
        guard let name = runs[uid]?.name else {
            // A run this controller does not follow (deleted, or finished and forgotten): the agent may forget it.
            if case .result = message {
                _ = await gateway.send(run: .acknowledge(RunAcknowledge(runUID: uid)), to: runner)
            }
            return
        }
        guard runs[uid]?.dispatch.phase(of: runner) != nil else {
            logger.notice(
                "an agent reported on a run not dispatched to it; closing its stream",
                metadata: ["steady.runner": "\(runner)", "steady.remoterun": "\(name)"])
            await gateway.disconnect(runner: runner)
            return
        }
        switch message {
        case .accepted:
            await apply(.accepted(runner), to: uid, now: now)
        case .started(let started):
            let replica = replicas?.url
            updateDetail(runner, of: uid) { detail in
                detail.startTime = started.startTime
                detail.outputReplica = replica ?? detail.outputReplica
            }
            await apply(.started(runner), to: uid, now: now)
        case .output(let chunk):
            if let dropped = chunk.droppedBefore { output?.drop(run: uid, runner: runner, bytes: dropped) }
            if let bytes = chunk.bytes { output?.append(run: uid, runner: runner, stream: chunk.stream, bytes: bytes) }
            // Output a replica had not seen the start of (its agent moved here): it is kept here from now on.
            if let replica = replicas?.url, runs[uid]?.details[runner]?.outputReplica != replica {
                updateDetail(runner, of: uid) { $0.outputReplica = replica }
                unwritten.insert(uid)
            }
        case .result(let result):
            let replica = replicas?.url
            updateDetail(runner, of: uid) { detail in
                detail.outputReplica = replica ?? detail.outputReplica
                detail.phase = result.phase
                detail.exitCode = result.exitCode
                detail.signal = result.signal
                detail.startTime = result.startTime ?? detail.startTime
                detail.completionTime = result.completionTime
                detail.outputBytes = result.outputBytes
                detail.outputTruncated = result.outputTruncated
                detail.reason = result.reason
                detail.message = result.message
            }
            output?.finish(run: uid, runner: runner)
            await apply(.finished(runner, result.phase), to: uid, now: now)
            acknowledgements[uid, default: []].insert(runner)
        case .refused(let refused):
            updateDetail(runner, of: uid) { detail in
                detail.phase = .refused
                detail.reason = refused.reason.rawValue
                detail.message = refused.message
                detail.completionTime = Timestamp.format(currentTime())
            }
            output?.finish(run: uid, runner: runner)
            await apply(.finished(runner, .refused), to: uid, now: now)
        }
    }

    /// The reason of a runner given up because no live replica holds its agent; an agent's result replaces it.
    static let replicaLost = "ReplicaLost"

    /// Results recorded in memory whose agents are told once the status holding them is written.
    private var acknowledgements: [String: Set<String>] = [:]

    private func apply(_ event: RunDispatch.Event, to uid: String, now: Date) async {
        // In place: a copy of the run's dispatch would cost all its runners, for each event.
        guard let directives = runs[uid]?.dispatch.handle(event, now: now) else { return }
        await perform(directives, for: uid)
        unwritten.insert(uid)
    }

    // MARK: Directives

    private func perform(_ directives: [RunDispatch.Directive], for uid: String) async {
        guard !directives.isEmpty, let name = runs[uid]?.name, let spec = runs[uid]?.spec else { return }
        // One request for every runner of the run, encoded once.
        let request = RunControllerMessage.request(
            RunRequest(
                runUID: uid, runName: name, conditions: spec.conditions ?? [], command: spec.command,
                timeoutMilliseconds: spec.timeout.map { Int64($0.seconds * 1000) }))
        var requestLine: [UInt8]?
        for directive in directives {
            switch directive {
            case .dispatch(let runner):
                if requestLine == nil { requestLine = try? request.line() }
                if let requestLine { _ = await gateway.send(line: requestLine, to: runner) }
            case .cancel(let runner):
                _ = await gateway.send(run: .cancel(RunCancel(runUID: uid)), to: runner)
            case .markUnreachable(let runner, let reason):
                let message =
                    reason == Self.replicaLost
                    ? "the controller replica its agent reported to and its agent both went silent"
                    : "the runner's agent did not take the run in time"
                note(runner, in: uid, reason: reason, message: message)
                output?.finish(run: uid, runner: runner)
            case .markSkipped(let runner):
                note(runner, in: uid, reason: "MaxErrorsExceeded", message: "not started: too many runners failed")
            case .markCancelled(let runner, let reason):
                note(runner, in: uid, reason: reason, message: "not started: the run was stopped")
            case .complete(let phase, let reason):
                runs[uid]?.completionTime = Timestamp.format(currentTime())
                output?.complete(run: uid)
                logger.info(
                    "remote run complete",
                    metadata: [
                        "steady.remoterun": "\(name)", "steady.phase": "\(phase.rawValue)",
                        "steady.reason": "\(reason ?? "")",
                    ])
            }
        }
    }

    private func note(_ runner: String, in uid: String, reason: String, message: String) {
        updateDetail(runner, of: uid) { detail in
            detail.reason = reason
            detail.message = message
            detail.completionTime = Timestamp.format(currentTime())
        }
    }

    /// Changes what is recorded of `runner` in run `uid`, in place (a copy of the run would cost all its runners).
    private func updateDetail(_ runner: String, of uid: String, _ change: (inout RemoteRunSpec.RunnerResult) -> Void) {
        runs[uid]?.updateDetail(runner, change)
    }

    // MARK: Status

    /// Writes the status of every run that changed and is due (see ``statusWriteInterval(runners:)``); a failed
    /// write is tried again after the interval. Completed runs are forgotten once written.
    private func writeStatuses() async {
        let now = currentTime()
        for uid in unwritten.sorted() {
            guard let name = runs[uid]?.name, let runners = runs[uid]?.dispatch.runners.count else {
                unwritten.remove(uid)
                lastStatusWrite[uid] = nil
                continue
            }
            if runs[uid]?.dispatch.completion == nil, let last = lastStatusWrite[uid],
                now.timeIntervalSince(last) < Self.statusWriteInterval(runners: runners)
            {
                continue
            }
            do {
                // Encoded in place first, then taken for the write.
                let results = try runs[uid]?.encodeResults() ?? []
                guard let run = runs[uid].map(StatusSummary.init) else { continue }
                let isWritten = try await objects.updateStatus(
                    Kinds.remoteRun, name: name, options: WriteOptions(fieldManager: "steady-remoterun")
                ) { current in
                    guard current["metadata"]?["uid"]?.stringValue == uid else { return current["status"] ?? [:] }
                    return try Self.status(of: run, results: results, over: current)
                }
                unwritten.remove(uid)
                lastStatusWrite[uid] = now
                if let runners = acknowledgements.removeValue(forKey: uid), !runners.isEmpty,
                    let line = try? RunControllerMessage.acknowledge(RunAcknowledge(runUID: uid)).line()
                {
                    for runner in runners { _ = await gateway.send(line: line, to: runner) }
                }
                if !isWritten || run.completion != nil {
                    runs[uid] = nil
                    lastStatusWrite[uid] = nil
                }
            } catch {
                lastStatusWrite[uid] = now
                logger.warning(
                    "cannot write remote run status; retrying",
                    metadata: ["steady.remoterun": "\(name)", "steady.error": "\(error)"])
            }
        }
    }

    /// What a status write records of a run beyond its results, taken before the write so that the run itself is
    /// not held (and copied whole by its next change) while the write is under way.
    struct StatusSummary: Sendable {
        var counts: RemoteRunSpec.Counts
        var phase: RemoteRunSpec.Phase
        var completion: (phase: RemoteRunSpec.Phase, reason: String?)?
        var runners: Int
        var startTime: String?
        var completionTime: String?

        init(_ run: ActiveRun) {
            counts = run.dispatch.counts
            phase = run.dispatch.phase
            completion = run.dispatch.completion
            runners = run.dispatch.runners.count
            startTime = run.startTime
            completionTime = run.completionTime
        }
    }

    /// The status of a run merged over the stored object's: `results` (``ActiveRun/encodeResults()``), counts,
    /// phase, times and conditions.
    ///
    /// A runner's stored result that is further along than this replica's (final, or running where this one has it
    /// pending) stays, and so does a stored final one: with several replicas it was recorded by the replica the
    /// runner's agent reports to; except a stored `ReplicaLost`, which a result its agent reported replaces. A run
    /// the store shows finished stays as it is.
    static func status(of run: StatusSummary, results: [JSONValue], over current: JSONValue) throws -> JSONValue {
        var status = current["status"] ?? [:]
        if status["phase"]?.stringValue.flatMap(RemoteRunSpec.Phase.init(rawValue:))?.isFinal == true {
            return status
        }
        let merged = mergedResults(results, over: status["results"]?.arrayValue ?? [])
        status["results"] = .array(merged.results)
        let phases = { merged.results.map { $0["phase"]?.stringValue.flatMap(RemoteRunSpec.Phase.init) ?? .pending } }
        status["counts"] = try JSONValue(
            encoding: merged.isChanged ? RemoteRunSpec.Counts(phases: phases()) : run.counts)
        status["phase"] = .string(run.phase.rawValue)
        status["startTime"] = run.startTime.map(JSONValue.string)
        status["completionTime"] = run.completionTime.map(JSONValue.string)
        var conditions = (status["conditions"]?.arrayValue ?? []).compactMap { try? $0.decode(as: Condition.self) }
        let generation = current["metadata"]?["generation"]?.intValue
        if let completion = run.completion {
            let succeeded = completion.phase == .succeeded
            let summary = "\(run.counts[.succeeded])/\(run.runners) runners succeeded"
            conditions.set(
                Condition(
                    type: "Complete", status: succeeded ? .true : .false,
                    reason: succeeded ? "Succeeded" : (completion.reason ?? completion.phase.rawValue),
                    message: summary, observedGeneration: generation))
            conditions.set(
                Condition(
                    type: "Failed", status: succeeded ? .false : .true,
                    reason: succeeded ? "Succeeded" : (completion.reason ?? completion.phase.rawValue),
                    message: summary, observedGeneration: generation))
        }
        status["conditions"] = try JSONValue(encoding: conditions)
        return status
    }

    /// `ours` with each runner's stored result kept where it is further along, or final (see
    /// ``status(of:results:over:)``); `isChanged` when any was kept.
    static func mergedResults(_ ours: [JSONValue], over stored: [JSONValue])
        -> (results: [JSONValue], isChanged: Bool)
    {
        guard !stored.isEmpty else { return (ours, false) }
        var storedByRunner: [String: JSONValue] = [:]
        for result in stored {
            if let runner = result["runner"]?.stringValue { storedByRunner[runner] = result }
        }
        var isChanged = false
        let results = ours.map { result in
            guard let runner = result["runner"]?.stringValue, let theirs = storedByRunner[runner], theirs != result
            else { return result }
            let (kept, mine) = (progress(of: theirs), progress(of: result))
            guard kept > mine || kept == 2 && mine == 2 && !isReported(result, over: theirs) else { return result }
            isChanged = true
            return theirs
        }
        return (results, isChanged)
    }

    /// Whether final `result` is what an agent reported for a runner that `stored` gave up as `ReplicaLost`.
    private static func isReported(_ result: JSONValue, over stored: JSONValue) -> Bool {
        stored["reason"]?.stringValue == replicaLost && result["reason"]?.stringValue != replicaLost
            && result["phase"]?.stringValue != RemoteRunSpec.Phase.unreachable.rawValue
    }

    /// How far a result is: 0 pending, 1 running, 2 final.
    private static func progress(of result: JSONValue) -> Int {
        guard let phase = result["phase"]?.stringValue.flatMap(RemoteRunSpec.Phase.init(rawValue:)) else { return 0 }
        return phase.isFinal ? 2 : phase == .running ? 1 : 0
    }
}
