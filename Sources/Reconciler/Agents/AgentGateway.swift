import Foundation
import Logging
import Resources
import ServiceLifecycle
import Synchronization

/// The controller's side of the agent protocol: computes each runner's slice, streams it as diffs to the
/// connected agent, and turns agent reports into Runner status.
public actor AgentGateway {
    public struct Configuration: Sendable {
        /// A runner whose reports stop for this long is marked `Connected=False`.
        public var heartbeatTimeout: Duration
        /// Messages buffered per agent; an agent that falls further behind is disconnected and resyncs.
        public var bufferLimit: Int
        public var keepaliveInterval: Duration
        /// How long changes are gathered before slices are recomputed.
        public var batchInterval: Duration

        public init(
            heartbeatTimeout: Duration = .seconds(15), bufferLimit: Int = 64, keepaliveInterval: Duration = .seconds(10),
            batchInterval: Duration = .milliseconds(5)
        ) {
            self.heartbeatTimeout = heartbeatTimeout
            self.bufferLimit = bufferLimit
            self.keepaliveInterval = keepaliveInterval
            self.batchInterval = batchInterval
        }
    }

    /// What the gateway keeps per runner. Thousands of runners are connected at once, so it stays small: slices
    /// are shared between runners (interned by digest), and the status written is remembered as a hash.
    struct RunnerState {
        var slice = SlicePlanner.Slice.empty
        var revision: Int64 = 0
        /// The previous slice, so an agent one step behind gets a diff rather than a snapshot.
        var previous: (revision: Int64, slice: SlicePlanner.Slice)?
        var connections: [UUID: any SliceConnection] = [:]
        var lastReport: ContinuousClock.Instant?
        var report: AgentReport?
        /// A hash of the status last written, to write only on change.
        var writtenStatusHash: Int?
        /// Whether the status last written said Connected=True, so that a silent runner is marked once.
        var writtenConnected = false
        var lastHeartbeatWrite: ContinuousClock.Instant?

        /// Sends every connection a keep-alive and drops those whose agent went away; true when any was dropped.
        mutating func sendKeepalive() -> Bool {
            let keepalive = SliceMessage(type: .keepalive, revision: revision, digest: slice.digest)
            let open = connections.filter { _, connection in
                if case .closed = connection.send(keepalive) { return false }
                return true
            }
            defer { connections = open }
            return open.count != connections.count
        }
    }

    let objects: ObjectService
    public let credentials: AgentCredentials
    nonisolated let configuration: Configuration
    let logger: Logger
    let planner = SlicePlanner()
    /// Which slice each runner's agent holds, for the status of Routes, Actions and Assignments.
    public nonisolated let syncIndex = RunnerSyncIndex()
    private var inputs = SlicePlanner.Inputs()
    private var runners: [String: RunnerState] = [:]
    /// Every slice some runner holds or held last, by digest: runners with equal slices share one copy.
    private var slices: [String: SlicePlanner.Slice] = [:]
    private var slicesAfterLastSweep = 0
    /// Runners whose slice may have changed since the last recompute; `allDirty` when any may have.
    private var dirtyRunners: Set<String> = []
    private var allDirty = false
    private var isDirty: Bool { allDirty || !dirtyRunners.isEmpty }
    private var inputRevision: Int64 = 0
    private let clock = ContinuousClock()

    public init(objects: ObjectService, credentials: AgentCredentials, configuration: Configuration = Configuration(), logger: Logger) {
        self.objects = objects
        self.credentials = credentials
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Following the desired state

    /// Lists and watches the store, recomputing slices in small batches; marks silent runners disconnected.
    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.followStore() }
                group.addTask { try await self.recomputeLoop() }
                group.addTask { try await self.livenessLoop() }
                group.addTask { try await self.keepaliveLoop() }
                group.addTask { await self.takeReports() }
                try await group.next()
                group.cancelAll()
            }
        }
        closeAllConnections()
    }

    /// Reports from agent streams, handed over on the event loops: the newest per runner, so that an agent
    /// sending faster than they are recorded costs one entry rather than a growing queue.
    private nonisolated let pendingReports = Mutex<[String: AgentReport]>([:])
    private nonisolated let reportsArrived = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// Hands over a report from an agent stream; the gateway records it soon after.
    public nonisolated func receive(runner: String, report: AgentReport) {
        let wasEmpty = pendingReports.withLock { pending in
            defer { pending[runner] = report }
            return pending.isEmpty
        }
        if wasEmpty { reportsArrived.continuation.yield() }
    }

    /// Records reports as they arrive and writes status concurrently across runners, so that the writes share
    /// the store's transactions, but one at a time per runner, so that a runner's newest report is what stays
    /// written (which also bounds the writers to one per runner).
    private func takeReports() async {
        await withDiscardingTaskGroup { group in
            for await _ in reportsArrived.stream {
                let arrived = pendingReports.withLock { pending in
                    defer { pending = [:] }
                    return pending
                }
                for (runner, received) in arrived {
                    record(runner: runner, received)
                    guard claimStatusWriter(runner) else { continue }
                    group.addTask { await self.writeStatusUntilCurrent(runner: runner) }
                }
            }
        }
    }

    /// Runners whose status is being written, and those of them whose state changed again meanwhile.
    private var writingStatus: Set<String> = []
    private var changedWhileWriting: Set<String> = []

    private func record(runner: String, _ report: AgentReport) {
        var state = runners[runner] ?? RunnerState()
        state.report = report
        state.lastReport = clock.now
        runners[runner] = state
    }

    /// Writes a runner's status, one write at a time per runner: asked while a write runs, it has that writer
    /// write again once done, so that the newest state is what stays written, whichever write finishes last.
    private func updateStatus(runner: String) async {
        if claimStatusWriter(runner) { await writeStatusUntilCurrent(runner: runner) }
    }

    /// True when the caller is now the runner's status writer; false when one runs (and will write again).
    private func claimStatusWriter(_ runner: String) -> Bool {
        guard !writingStatus.contains(runner) else {
            changedWhileWriting.insert(runner)
            return false
        }
        writingStatus.insert(runner)
        return true
    }

    /// Writes until the state written is the newest; the caller holds the writer's claim.
    private func writeStatusUntilCurrent(runner: String) async {
        repeat {
            changedWhileWriting.remove(runner)
            await writeStatus(runner: runner)
        } while changedWhileWriting.contains(runner)
        writingStatus.remove(runner)
    }

    private func followStore() async throws {
        let store = objects.store
        while !Task.isCancelled {
            do {
                let (listed, revision) = try await store.list(kind: nil)
                resetInputs(listed, revision: revision)
                for try await event in try await store.watch(kind: nil, fromRevision: revision) {
                    await apply(event)
                }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("agent gateway watch ended; re-listing", metadata: ["steady.error": "\(error)"])
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    private func resetInputs(_ listed: [StoredObject], revision: Int64) {
        var fresh = SlicePlanner.Inputs()
        for stored in listed {
            if let value = try? JSONValue.parse(stored.value) {
                fresh.upsert(kind: stored.kind, name: stored.name, object: value)
            }
        }
        inputs = fresh
        inputRevision = revision
        allDirty = true
    }

    private func apply(_ event: StoreEvent) async {
        let kind = event.object.kind
        var mattered: Bool
        if event.type == .deleted {
            mattered = inputs.remove(kind: kind, name: event.object.name)
            if kind == RunnerSpec.kind {
                // Deleting a Runner revokes its agent's credential and closes its stream.
                await credentials.revoke(runner: event.object.name)
                if let state = runners.removeValue(forKey: event.object.name) {
                    for connection in state.connections.values { connection.close() }
                }
                syncIndex.set(runner: event.object.name, holds: nil)
            }
        } else if let value = try? JSONValue.parse(event.object.value) {
            mattered = inputs.upsert(kind: kind, name: event.object.name, object: value)
        } else {
            mattered = false
        }
        // Seen, whether or not it mattered: a convergence query waits on this revision.
        inputRevision = event.revision
        if mattered { markAffected(kind: kind, name: event.object.name) }
    }

    /// Marks the runners whose slice a change of this object can affect, so a stream of unrelated writes
    /// does not recompute every runner.
    private func markAffected(kind: String, name: String) {
        switch kind {
        case RunnerSpec.kind:
            dirtyRunners.insert(name)
        case RouteSpec.kind, ActionSpec.kind:
            let naming = inputs.assignments.values.filter { assignment in
                (kind == RouteSpec.kind ? assignment.routes : assignment.actions)?.contains(name) ?? false
            }
            guard !naming.isEmpty else { return }
            for (runner, labels) in inputs.runners
            where naming.contains(where: { $0.matches(runnerName: runner, labels: labels) }) {
                dirtyRunners.insert(runner)
            }
        case AssignmentSpec.kind:
            allDirty = true
        default:
            // Templates and Secrets reach a runner only through its routes and actions.
            for (runner, state) in runners where !state.slice.objects.isEmpty { dirtyRunners.insert(runner) }
        }
    }

    private func recomputeLoop() async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: configuration.batchInterval)
            if isDirty { await recompute() }
        }
    }

    /// Recomputes every runner's slice and sends a diff to the agents whose slice changed.
    func recompute() async {
        var names: Set<String>
        if allDirty {
            names = Set(inputs.runners.keys).union(runners.keys)
        } else {
            names = dirtyRunners
        }
        allDirty = false
        dirtyRunners = []
        var changed: [String] = []
        // Runners matched by the same Assignments get the same slice: plan it once per pass.
        var planned: [[String]: SlicePlanner.Slice] = [:]
        for name in names {
            let slice: SlicePlanner.Slice
            if let labels = inputs.runners[name] {
                let matching = planner.assignments(matching: name, labels: labels, inputs: inputs)
                if let known = planned[matching] {
                    slice = known
                } else {
                    slice = intern(planner.slice(ofAssignments: matching, inputs: inputs))
                    planned[matching] = slice
                }
            } else {
                slice = .empty
            }
            var state = runners[name] ?? RunnerState()
            guard slice.digest != state.slice.digest || state.revision == 0 else { continue }
            let old = state.slice
            let oldRevision = state.revision
            state.previous = (oldRevision, old)
            state.slice = slice
            state.revision = inputRevision
            let changes = slice.changes(since: old)
            let message = SliceMessage(
                type: .diff, revision: state.revision, baseRevision: oldRevision, objects: changes.upserts,
                removed: changes.removed, digest: slice.digest)
            for (id, connection) in state.connections {
                switch connection.send(message) {
                case .overflowed:
                    connection.close()
                    state.connections[id] = nil
                    logger.notice("agent too slow; disconnected to resync", metadata: ["steady.runner": "\(name)"])
                case .closed:
                    state.connections[id] = nil
                case .queued:
                    break
                }
            }
            runners[name] = state
            changed.append(name)
        }
        sweepSlices()
        for name in changed { await updateStatus(runner: name) }
    }

    /// The shared copy of a slice equal to `slice`.
    private func intern(_ slice: SlicePlanner.Slice) -> SlicePlanner.Slice {
        if let known = slices[slice.digest] { return known }
        slices[slice.digest] = slice
        return slice
    }

    /// Forgets the slices no runner holds any more, whenever the table has doubled since the last sweep.
    private func sweepSlices() {
        guard slices.count > 2 * slicesAfterLastSweep + 16 else { return }
        var live: Set<String> = []
        for state in runners.values {
            live.insert(state.slice.digest)
            if let previous = state.previous { live.insert(previous.slice.digest) }
        }
        slices = slices.filter { live.contains($0.key) }
        slicesAfterLastSweep = slices.count
    }

    // MARK: Agents

    /// Opens an agent's slice stream from the revision and digest it holds.
    public func connect(runner: String, revision: Int64, digest: String?) -> AsyncStream<SliceMessage> {
        let (stream, continuation) = AsyncStream<SliceMessage>.makeStream(
            bufferingPolicy: .bufferingOldest(configuration.bufferLimit))
        attach(runner: runner, revision: revision, digest: digest, connection: StreamSliceConnection(continuation))
        return stream
    }

    /// Serves `runner`'s slice on `connection`, starting from what the agent holds: nothing new when `digest` is
    /// the current slice's, a diff when it is the previous one's at `revision`, a snapshot otherwise.
    public func attach(runner: String, revision: Int64, digest: String?, connection: any SliceConnection) {
        var state = runners[runner] ?? RunnerState()
        if state.revision == 0 && inputs.runners[runner] != nil {
            state.slice = intern(planner.slice(runner: runner, labels: inputs.runners[runner] ?? [:], inputs: inputs))
            state.revision = max(inputRevision, 1)
        }
        let first: SliceMessage
        if digest == state.slice.digest {
            first = SliceMessage(type: .keepalive, revision: state.revision, digest: state.slice.digest)
        } else if let previous = state.previous, previous.revision == revision, previous.slice.digest == digest {
            let changes = state.slice.changes(since: previous.slice)
            first = SliceMessage(
                type: .diff, revision: state.revision, baseRevision: revision, objects: changes.upserts,
                removed: changes.removed, digest: state.slice.digest)
        } else {
            first = SliceMessage(
                type: .snapshot, revision: state.revision, objects: state.slice.sliceObjects, digest: state.slice.digest)
        }
        _ = connection.send(first)
        // Connections whose agent went away are dropped here and when a send finds them closed.
        _ = state.sendKeepalive()
        state.connections[UUID()] = connection
        runners[runner] = state
    }

    private func closeAllConnections() {
        for state in runners.values {
            for connection in state.connections.values { connection.close() }
        }
    }

    /// Records a report (heartbeat and sync status) and updates the Runner's status when it changed.
    public func report(runner: String, _ report: AgentReport) async {
        record(runner: runner, report)
        await updateStatus(runner: runner)
    }

    /// Whether an agent reported recently: a name held by a live agent cannot be enrolled again.
    public func isLive(runner: String) -> Bool {
        guard let last = runners[runner]?.lastReport else { return false }
        return clock.now - last < configuration.heartbeatTimeout
    }

    public func sliceRevision(runner: String) -> Int64 { runners[runner]?.revision ?? 0 }

    /// Which runners hold the objects in their slice (or are the objects), and whether each agent has
    /// applied a slice computed from at least `revision`.
    public func convergence(_ request: ConvergenceRequest) -> ConvergenceReport {
        let keys = Set(request.objects)
        let isCaughtUp = inputRevision >= request.revision && !isDirty
        var affected = Set(request.objects.filter { $0.kind == RunnerSpec.kind }.map(\.name))
        for (name, state) in runners where state.slice.objects.keys.contains(where: keys.contains) {
            affected.insert(name)
        }
        let now = clock.now
        let states = affected.sorted().compactMap { name -> ConvergenceReport.RunnerState? in
            guard inputs.runners[name] != nil else { return nil }
            guard let state = runners[name], let report = state.report, let last = state.lastReport else {
                return .init(name: name, isSynced: false, reason: "NeverConnected", message: "no agent has reported as this runner")
            }
            if now - last >= configuration.heartbeatTimeout {
                return .init(name: name, isSynced: false, reason: "Disconnected", message: "no report for \(now - last)")
            }
            if !report.synced {
                return .init(name: name, isSynced: false, reason: report.reason ?? "SyncFailed", message: report.message)
            }
            if report.sliceDigest != state.slice.digest {
                return .init(name: name, isSynced: false, reason: "SyncPending", message: "slice revision \(state.revision) not yet applied")
            }
            return .init(name: name, isSynced: true)
        }
        return ConvergenceReport(isCaughtUp: isCaughtUp, runners: states)
    }

    private func livenessLoop() async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(1))
            for (name, state) in runners where state.report != nil {
                let isStale = state.lastReport.map { clock.now - $0 >= configuration.heartbeatTimeout } ?? true
                if isStale && state.writtenConnected { await updateStatus(runner: name) }
            }
        }
    }

    /// Sends every open stream a keep-alive, from one loop rather than a timer per connection; a stream whose
    /// agent went away is found and dropped here.
    private func keepaliveLoop() async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: configuration.keepaliveInterval)
            for (name, state) in runners where !state.connections.isEmpty {
                var state = state
                if state.sendKeepalive() { runners[name]?.connections = state.connections }
            }
        }
    }

    // MARK: Runner status

    /// Writes Connected, Synced and Ready with what the agent reported, only when something changed
    /// (and the heartbeat time at most once a minute, so heartbeats do not churn the store).
    private func writeStatus(runner: String) async {
        guard let state = runners[runner], inputs.runners[runner] != nil else {
            syncIndex.set(runner: runner, holds: nil)
            return
        }
        let now = clock.now
        let isConnected = state.lastReport.map { now - $0 < configuration.heartbeatTimeout } ?? false
        let holdsSlice = isConnected && state.report.map { $0.synced && $0.sliceDigest == state.slice.digest } == true
        syncIndex.set(runner: runner, holds: holdsSlice ? state.slice : nil)
        var status: [String: JSONValue] = [:]
        var conditions: [JSONValue] = []
        func condition(_ type: String, _ value: Bool, _ reason: String, _ message: String) -> JSONValue {
            ["type": .string(type), "status": value ? "True" : "False", "reason": .string(reason), "message": .string(message)]
        }
        guard let report = state.report else {
            // Declared (in manifests, or by kubectl) before any agent joined as it: say so, rather than nothing.
            let waiting = "no agent has reported as this runner; start one with `steady agent --name \(runner)`"
            conditions = [
                condition("Connected", false, "NeverConnected", waiting),
                ["type": "Synced", "status": "Unknown", "reason": "NeverConnected", "message": .string(waiting)],
                condition("Ready", false, "NeverConnected", waiting),
            ]
            let comparable: JSONValue = ["conditions": .array(conditions)]
            guard comparable.hashValue != state.writtenStatusHash else { return }
            runners[runner]?.writtenStatusHash = comparable.hashValue
            await patchStatus(runner: runner, status: comparable, isConnected: false)
            return
        }
        conditions.append(
            isConnected
                ? condition("Connected", true, "Heartbeat", "the agent reports every few seconds")
                : condition("Connected", false, "HeartbeatTimeout", "no report from the agent for \(configuration.heartbeatTimeout)"))
        let isCurrent = report.sliceDigest == state.slice.digest
        let synced: JSONValue
        if report.synced && isCurrent {
            synced = condition("Synced", true, "Synced", "applied slice revision \(report.observedSliceRevision ?? 0)")
        } else if !report.synced {
            synced = condition("Synced", false, report.reason ?? "SyncFailed", report.message ?? "the agent could not apply its slice")
        } else {
            synced = condition("Synced", false, "SyncPending", "slice revision \(state.revision) not yet applied")
        }
        conditions.append(synced)
        let isSynced = report.synced && isCurrent
        // Ready repeats the reason of the condition that holds it back, so one line tells the whole story.
        let notReady = isConnected ? synced : conditions[0]
        conditions.append(
            condition(
                "Ready", isConnected && isSynced, isConnected ? (isSynced ? "Ready" : "NotSynced") : "Disconnected",
                isConnected && isSynced
                    ? "connected and synced"
                    : "\(notReady["type"]?.stringValue ?? "")=False (\(notReady["reason"]?.stringValue ?? "")): "
                        + (notReady["message"]?.stringValue ?? "")))
        status["hostname"] = report.hostname.map(JSONValue.string)
        status["agentVersion"] = report.agentVersion.map(JSONValue.string)
        status["observedSliceRevision"] = report.observedSliceRevision.map(JSONValue.int)
        status["desiredSliceRevision"] = .int(state.revision)
        let names = state.slice.names
        status["assigned"] = [
            "routes": .array(names.routes.map(JSONValue.string)), "actions": .array(names.actions.map(JSONValue.string)),
            "templates": .array(names.templates.map(JSONValue.string)), "secrets": .array(names.secrets.map(JSONValue.string)),
        ]
        var comparable = JSONValue.object(status)
        comparable["conditions"] = .array(conditions)
        let heartbeatDue = state.lastHeartbeatWrite.map { now - $0 >= .seconds(60) } ?? true
        // A hash, not the status itself: equal statuses hash equally, and a collision would only delay a write
        // until the next change or heartbeat.
        let hash = comparable.hashValue
        guard hash != state.writtenStatusHash || (isConnected && heartbeatDue) else { return }
        runners[runner]?.writtenStatusHash = hash
        runners[runner]?.writtenConnected = isConnected
        runners[runner]?.lastHeartbeatWrite = now
        await patchStatus(runner: runner, status: comparable, isConnected: isConnected)
    }

    private func patchStatus(runner: String, status: JSONValue, isConnected: Bool) async {
        var body = status
        if isConnected { body["lastHeartbeatTime"] = .string(Timestamp.now()) }
        do {
            try await objects.updateStatus(Kinds.runner, name: runner, options: WriteOptions(fieldManager: "steady-agent-gateway")) { current in
                // Keep lastTransitionTime unless the status flipped; stamp observedGeneration.
                var conditions = (try? current["status"]?["conditions"]?.decode(as: [Condition].self)) ?? []
                for item in body["conditions"]?.arrayValue ?? [] {
                    guard let type = item["type"]?.stringValue, let value = item["status"]?.stringValue,
                        let parsed = Condition.Status(rawValue: value)
                    else { continue }
                    conditions.set(
                        Condition(
                            type: type, status: parsed, reason: item["reason"]?.stringValue ?? "",
                            message: item["message"]?.stringValue ?? "",
                            observedGeneration: current["metadata"]?["generation"]?.intValue))
                }
                var status = body
                status["conditions"] = try JSONValue(encoding: conditions)
                status["observedGeneration"] = current["metadata"]?["generation"]
                return status
            }
        } catch {
            logger.debug("cannot write runner status", metadata: ["steady.runner": "\(runner)", "steady.error": "\(error)"])
        }
    }
}

extension AgentGateway: Service {}

extension AgentGateway {
    /// Enrols a runner whose caller is already trusted (a checked join token, or `steady up`'s own runner):
    /// adopts a Runner declared beforehand (its labels win) or creates one with `labels`, then issues its
    /// credential. The Runner is created without field ownership, so applying manifests later takes over.
    public func enrollRunner(name: String, labels: [String: String]) async throws -> String {
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
