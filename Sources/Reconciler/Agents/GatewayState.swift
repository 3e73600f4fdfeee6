import Foundation
import Resources

/// What the agent gateway knows and decides, as a value that does no I/O: the desired state slices are planned
/// from, each runner's slice and connections, the last report of each agent, and the status last written.
///
/// Every event (a change of the desired state, an agent connecting or reporting, time passing) is a mutating call
/// that returns ``Directive``s; `AgentGateway` carries them out. Time is a parameter, so the heartbeat timeout and
/// the heartbeat writes are tested without a clock.
struct GatewayState {
    typealias Instant = ContinuousClock.Instant

    struct Configuration {
        /// A runner whose reports stop for this long is marked `Connected=False`.
        var heartbeatTimeout: Duration
        /// How often a connected runner's status is written even though nothing changed, for `lastHeartbeatTime`.
        var heartbeatWriteInterval: Duration = .seconds(60)

        /// The longest a live controller holding a connected runner's agent goes without writing its heartbeat: the
        /// heartbeat write interval, plus the heartbeat timeout within which the agent reports, and as much again
        /// for a write that a busy store delays. A runner stored as connected whose heartbeat stands still longer is
        /// held by no live controller.
        var heartbeatSilence: Duration { heartbeatWriteInterval + heartbeatTimeout * 2 }
    }

    /// What the gateway is to do.
    enum Directive: Equatable {
        /// Sends a message on one of a runner's connections.
        case send(SliceMessage, runner: String, connection: UUID)
        /// Hangs up one connection.
        case close(runner: String, connection: UUID)
        /// Writes a runner's status (one writer per runner; the newest wins).
        case writeStatus(runner: String, RunnerStatus)
        /// Revokes a deleted runner's credential.
        case revokeCredential(runner: String)
        /// Records which slice a runner's agent holds (nil: none the controller can vouch for).
        case recordHeld(runner: String, slice: SlicePlanner.Slice?)
        /// Closes a connection whose credential expired (at `expired`, wall clock), telling the agent why.
        case closeExpired(runner: String, connection: UUID, expired: Date)
        /// Marks `Connected=False` a runner that the store shows connected but whose heartbeat no controller has
        /// written for ``Configuration/heartbeatSilence``: its agent went away with the controller that held it.
        case writeUnheard(runner: String, status: RunnerStatus)
    }

    /// A runner the store shows connected, as the informer last delivered it, and since when (here) its
    /// `lastHeartbeatTime` has stood still.
    struct StoredHeartbeat: Equatable {
        var heartbeat: String?
        var since: Instant
    }

    /// When a connection's credential expires: on the monotonic clock, for the timer, and on the wall clock, for
    /// the reason given.
    struct CredentialExpiry: Equatable {
        var runner: String
        var instant: Instant
        var wallClock: Date
    }

    /// What the gateway keeps per runner. Thousands of runners are connected at once, so it stays small: slices
    /// are shared between runners (interned by digest), and the status written is remembered as a hash.
    struct Runner {
        var slice = SlicePlanner.Slice.empty
        var revision: Int64 = 0
        /// The previous slice, so an agent one step behind gets a diff rather than a snapshot.
        var previous: (revision: Int64, slice: SlicePlanner.Slice)?
        var connections: Set<UUID> = []
        var lastReport: Instant?
        var report: AgentReport?
        /// A hash of the status last written, to write only on change.
        var writtenStatusHash: Int?
        /// Whether the status last written said Connected=True, so that a silent runner is marked once.
        var writtenConnected = false
        var lastHeartbeatWrite: Instant?
    }

    let configuration: Configuration
    private let planner = SlicePlanner()
    private(set) var inputs = SlicePlanner.Inputs()
    private(set) var runners: [String: Runner] = [:]
    /// Every slice some runner holds or held last, by digest: runners with equal slices share one copy.
    private var slices: [String: SlicePlanner.Slice] = [:]
    private var slicesAfterLastSweep = 0
    /// Runners whose slice may have changed since the last recompute; `allDirty` when any may have.
    private var dirtyRunners: Set<String> = []
    private var allDirty = false
    /// The store revision the inputs reflect.
    private(set) var inputRevision: Int64 = 0
    /// The connections whose credential expires, by connection.
    private(set) var credentialExpiries: [UUID: CredentialExpiry] = [:]
    /// Runners the store shows `Connected=True`, by name: a runner no controller holds any more is found here.
    private(set) var storedHeartbeats: [String: StoredHeartbeat] = [:]

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    var isDirty: Bool { allDirty || !dirtyRunners.isEmpty }

    // MARK: The desired state

    /// Applies what the informer applied to its cache; slices are recomputed by ``recompute()``.
    mutating func apply(_ update: InformerUpdate, now: Instant) -> [Directive] {
        var directives: [Directive] = []
        for change in update.changes {
            let kind = change.key.kind
            let name = change.key.name
            let mattered: Bool
            if let new = change.new {
                mattered = inputs.upsert(kind: kind, name: name, object: new)
                if kind == RunnerSpec.kind { noteStoredHeartbeat(of: name, in: new, now: now) }
            } else {
                storedHeartbeats[name] = nil
                mattered = inputs.remove(kind: kind, name: name)
                if kind == RunnerSpec.kind {
                    // Deleting a Runner revokes its agent's credential and closes its stream.
                    directives.append(.revokeCredential(runner: name))
                    if let runner = runners.removeValue(forKey: name) {
                        directives += runner.connections.map { .close(runner: name, connection: $0) }
                        for connection in runner.connections { credentialExpiries[connection] = nil }
                    }
                    directives.append(.recordHeld(runner: name, slice: nil))
                }
            }
            if mattered { markAffected(kind: kind, name: name) }
        }
        // Seen, whether or not it mattered: a convergence query waits on this revision.
        inputRevision = max(inputRevision, update.revision)
        return directives
    }

    /// Marks the runners whose slice a change of this object can affect, so a stream of unrelated writes
    /// does not recompute every runner.
    private mutating func markAffected(kind: String, name: String) {
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

    /// Recomputes the slices that may have changed, sends a diff to the agents whose slice did, and writes their
    /// status.
    mutating func recompute(now: Instant) -> [Directive] {
        let names = allDirty ? Set(inputs.runners.keys).union(runners.keys) : dirtyRunners
        allDirty = false
        dirtyRunners = []
        var directives: [Directive] = []
        var changed: [String] = []
        // Runners matched by the same Assignments get the same slice: plan it once per pass.
        var planned: [[String]: SlicePlanner.Slice] = [:]
        for name in names {
            let slice: SlicePlanner.Slice
            if let labels = inputs.runners[name] {
                let matching = planner.assignments(matching: name, labels: labels, inputs: inputs)
                let shared: SlicePlanner.Slice
                if let known = planned[matching] {
                    shared = known
                } else {
                    shared = intern(planner.slice(ofAssignments: matching, inputs: inputs))
                    planned[matching] = shared
                }
                slice = intern(planner.slice(shared, ownedBy: name, inputs: inputs))
            } else {
                slice = .empty
            }
            var state = runners[name] ?? Runner()
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
            directives += state.connections.map { .send(message, runner: name, connection: $0) }
            runners[name] = state
            changed.append(name)
        }
        sweepSlices()
        for name in changed { directives += status(of: name, now: now) }
        return directives
    }

    /// The shared copy of a slice equal to `slice`.
    private mutating func intern(_ slice: SlicePlanner.Slice) -> SlicePlanner.Slice {
        if let known = slices[slice.digest] { return known }
        slices[slice.digest] = slice
        return slice
    }

    /// Forgets the slices no runner holds any more, whenever the table has doubled since the last sweep.
    private mutating func sweepSlices() {
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

    /// Serves `runner`'s slice on a new connection, starting from what the agent holds: nothing new when `digest`
    /// is the current slice's, a diff when it is the previous one's at `revision`, a snapshot otherwise.
    /// A connection whose credential expires (`credentialExpiry`) is closed then by ``expireCredentials(now:)``.
    mutating func attach(
        runner: String, revision: Int64, digest: String?, connection: UUID, credentialExpiry: CredentialExpiry? = nil
    ) -> [Directive] {
        credentialExpiries[connection] = credentialExpiry
        var state = runners[runner] ?? Runner()
        if state.revision == 0, let labels = inputs.runners[runner] {
            state.slice = intern(planner.slice(runner: runner, labels: labels, inputs: inputs))
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
        // The connections open before this one get a keep-alive, so that those whose agent went away are found.
        let keepalives = keepalive(runner: runner, state: state)
        state.connections.insert(connection)
        runners[runner] = state
        return [.send(first, runner: runner, connection: connection)] + keepalives
    }

    /// A connection that could not take a message (its agent went away or fell too far behind) is forgotten;
    /// one that overflowed is also hung up, so that its agent reconnects and resyncs.
    mutating func connectionFailed(runner: String, connection: UUID, overflowed: Bool) -> [Directive] {
        credentialExpiries[connection] = nil
        guard runners[runner]?.connections.remove(connection) != nil else { return [] }
        return overflowed ? [.close(runner: runner, connection: connection)] : []
    }

    /// Keep-alives for every open connection of `runner`.
    func keepalive(runner: String) -> [Directive] {
        runners[runner].map { keepalive(runner: runner, state: $0) } ?? []
    }

    private func keepalive(runner: String, state: Runner) -> [Directive] {
        let message = SliceMessage(type: .keepalive, revision: state.revision, digest: state.slice.digest)
        return state.connections.map { .send(message, runner: runner, connection: $0) }
    }

    /// Keep-alives for every open connection: a connection whose agent went away is found when the send fails.
    func keepalives() -> [Directive] {
        runners.keys.flatMap { keepalive(runner: $0) }
    }

    /// Every open connection, to hang up on shutdown.
    func allConnections() -> [Directive] {
        runners.flatMap { name, state in state.connections.map { Directive.close(runner: name, connection: $0) } }
    }

    /// Records an agent's report (heartbeat and sync state) and writes the runner's status if it changed.
    mutating func record(runner: String, _ report: AgentReport, now: Instant) -> [Directive] {
        var state = runners[runner] ?? Runner()
        state.report = report
        state.lastReport = now
        runners[runner] = state
        return status(of: runner, now: now)
    }

    /// Whether an agent reported recently: a name held by a live agent cannot be enrolled again.
    func isLive(runner: String, now: Instant) -> Bool {
        guard let last = runners[runner]?.lastReport else { return false }
        return now - last < configuration.heartbeatTimeout
    }

    // MARK: Liveness

    /// Marks `Connected=False` the runners whose agent has not reported for the heartbeat timeout.
    mutating func expireSilentRunners(now: Instant) -> [Directive] {
        let silent = runners.compactMap { name, state -> String? in
            guard state.report != nil, state.writtenConnected else { return nil }
            let isStale = state.lastReport.map { now - $0 >= configuration.heartbeatTimeout } ?? true
            return isStale ? name : nil
        }
        return silent.flatMap { status(of: $0, now: now) } + expireUnheardRunners(now: now)
    }

    /// When the next runner that is written as connected goes silent, if none reports by then; nil when no
    /// runner is written as connected, here or by another controller.
    func nextSilenceDeadline() -> Instant? {
        let here = runners.values.compactMap { state -> Instant? in
            guard state.writtenConnected, let last = state.lastReport else { return nil }
            return last + configuration.heartbeatTimeout
        }
        let elsewhere = storedHeartbeats.compactMap { name, stored -> Instant? in
            isHeldHere(name) ? nil : stored.since + configuration.heartbeatSilence
        }
        return (here + elsewhere).min()
    }

    /// Remembers whether the stored Runner says `Connected=True` and when its heartbeat last moved.
    private mutating func noteStoredHeartbeat(of runner: String, in object: JSONValue, now: Instant) {
        let status = object["status"]
        guard RunnerStatus.saysConnected(status) else {
            storedHeartbeats[runner] = nil
            return
        }
        let heartbeat = status?["lastHeartbeatTime"]?.stringValue
        if storedHeartbeats[runner].map({ $0.heartbeat != heartbeat }) ?? true {
            storedHeartbeats[runner] = StoredHeartbeat(heartbeat: heartbeat, since: now)
        }
    }

    private func isHeldHere(_ runner: String) -> Bool {
        !(runners[runner]?.connections.isEmpty ?? true)
    }

    /// Marks `Connected=False` the runners the store shows connected whose heartbeat has stood still for
    /// ``Configuration/heartbeatSilence`` while no agent of theirs is connected here: whichever controller held
    /// them is gone. Every controller may find them; the first write wins, and the others see it.
    private mutating func expireUnheardRunners(now: Instant) -> [Directive] {
        let unheard = storedHeartbeats.filter { name, stored in
            !isHeldHere(name) && now - stored.since >= configuration.heartbeatSilence
        }
        return unheard.keys.sorted().map { name in
            storedHeartbeats[name] = nil
            return .writeUnheard(
                runner: name, status: RunnerStatus(unheardFor: configuration.heartbeatSilence))
        }
    }

    // MARK: Credential expiry

    /// Closes, with the reason, every connection whose credential has expired by `now`. Other connections of the
    /// same runner (an agent that rotated its credential) stay open.
    mutating func expireCredentials(now: Instant) -> [Directive] {
        var directives: [Directive] = []
        for (connection, expiry) in credentialExpiries where expiry.instant <= now {
            credentialExpiries[connection] = nil
            guard runners[expiry.runner]?.connections.remove(connection) != nil else { continue }
            directives.append(.closeExpired(runner: expiry.runner, connection: connection, expired: expiry.wallClock))
        }
        return directives
    }

    /// When the first open connection's credential expires; nil when none does.
    func nextCredentialExpiry() -> Instant? {
        credentialExpiries.values.map(\.instant).min()
    }

    // MARK: Convergence

    /// Which runners hold the objects in their slice (or are the objects), and whether each agent has applied
    /// a slice computed from at least `revision`.
    func convergence(_ request: ConvergenceRequest, now: Instant) -> ConvergenceReport {
        let keys = Set(request.objects)
        let isCaughtUp = inputRevision >= request.revision && !isDirty
        var affected = Set(request.objects.filter { $0.kind == RunnerSpec.kind }.map(\.name))
        for (name, state) in runners where state.slice.objects.keys.contains(where: keys.contains) {
            affected.insert(name)
        }
        let states = affected.sorted().compactMap { name -> ConvergenceReport.RunnerState? in
            guard inputs.runners[name] != nil else { return nil }
            guard let state = runners[name], let report = state.report, let last = state.lastReport else {
                return .init(
                    name: name, isSynced: false, reason: "NeverConnected", message: "no agent has reported as this runner")
            }
            if now - last >= configuration.heartbeatTimeout {
                return .init(name: name, isSynced: false, reason: "Disconnected", message: "no report for \(now - last)")
            }
            if !report.synced {
                return .init(
                    name: name, isSynced: false, reason: report.reason ?? "SyncFailed", message: report.message)
            }
            if report.sliceDigest != state.slice.digest {
                return .init(
                    name: name, isSynced: false, reason: "SyncPending",
                    message: "slice revision \(state.revision) not yet applied")
            }
            return .init(name: name, isSynced: true)
        }
        return ConvergenceReport(isCaughtUp: isCaughtUp, runners: states)
    }

    // MARK: Runner status

    /// The status write a runner needs now, if any: only when something changed, and for a connected runner at
    /// most once per `heartbeatWriteInterval` otherwise, so that heartbeats do not churn the store.
    mutating func status(of runner: String, now: Instant) -> [Directive] {
        guard let state = runners[runner], inputs.runners[runner] != nil else {
            return [.recordHeld(runner: runner, slice: nil)]
        }
        let isConnected = state.lastReport.map { now - $0 < configuration.heartbeatTimeout } ?? false
        let status = RunnerStatus(
            runner: runner, report: state.report, isConnected: isConnected, slice: state.slice,
            desiredRevision: state.revision, heartbeatTimeout: configuration.heartbeatTimeout)
        let holdsSlice = isConnected && status.isSynced
        let held = Directive.recordHeld(runner: runner, slice: holdsSlice ? state.slice : nil)
        // A hash, not the status itself: equal statuses hash equally, and a collision would only delay a write
        // until the next change or heartbeat.
        let hash = status.hashValue
        let heartbeatDue =
            state.report != nil
            && (state.lastHeartbeatWrite.map { now - $0 >= configuration.heartbeatWriteInterval } ?? true)
        guard hash != state.writtenStatusHash || (isConnected && heartbeatDue) else { return [held] }
        runners[runner]?.writtenStatusHash = hash
        runners[runner]?.writtenConnected = isConnected
        if state.report != nil { runners[runner]?.lastHeartbeatWrite = now }
        return [held, .writeStatus(runner: runner, status)]
    }
}
