import Foundation
import Resources

/// The decisions of one RemoteRun as a value: which runner to send it to next, which to give up on, when the
/// run is over. No I/O and no clock: the shell passes each event with the time it happened and carries out the
/// directives returned.
///
/// - **Rolling window.** At most `batchSize` runners are in flight (dispatched, accepted or running). A slot frees
///   when a runner reaches a final phase, never on a timer. Free slots go to runners whose agent is connected first,
///   in target order, so that a disconnected agent delays only itself; then to the others, which then have
///   `deliveryTimeout` to connect and take the run. With several controllers (`sharesWindow`), each replica keeps
///   a window and only the one holding a runner's agent really dispatches to it: there slots go in target order
///   alone, so that every replica's window is the same and at most `batchSize` runners run across them all.
/// - **Delivery timeout.** A runner that has not accepted the run `deliveryTimeout` after it was dispatched is
///   `Unreachable` (reason `DeliveryTimeout`); so is one that accepted or started it and whose agent went away and
///   did not come back in that time (reason `AgentLost`).
/// - **Replica lost.** With several controllers, a runner running on another replica is `Unreachable` (reason
///   `ReplicaLost`) once no sign of its agent (``Event/agentSeen(_:)``: its Runner's heartbeat, which only a live
///   replica holding its agent writes) came for `silenceTimeout`: that replica and its agent are both gone, or
///   the agent is connected nowhere. While the run is under way, a result its agent reports later still wins.
/// - **maxErrors.** Once more runners than allowed are `Failed`, `TimedOut`, `Unreachable` or `Refused`, runners
///   not dispatched yet are `Skipped`, dispatched ones that have not started are sent a cancel, running ones finish,
///   and the run ends `Failed` with reason `MaxErrorsExceeded`.
/// - **Suspend or delete.** Running and dispatched runners are sent a cancel (their agents answer `Cancelled`);
///   runners not dispatched are `Cancelled` at once; the run ends `Cancelled`.
/// - A runner's final phase never changes: a late result for it is ignored.
///
/// Wiring (done by the agent gateway's RemoteRun shell): on a RemoteRun that is Ready, create it with the
/// reconciler's targeted runners and call ``start(now:)``; feed `RunAccepted` → ``Event/accepted(_:)``,
/// `RunStarted` → ``Event/started(_:)``, `RunResult`/`RunRefused` → ``Event/finished(_:_:)``, stream open/close →
/// ``Event/connected(_:)``/``Event/disconnected(_:)``, `spec.suspend` or deletion → ``Event/stopped(reason:)``, and
/// ``Event/timePassed`` at ``nextDeadline``; with several controllers, what the stored status shows of other
/// replicas' runners → ``Event/runningElsewhere(_:)``, ``Event/recorded(_:_:)``, ``Event/recordedReplicaLost(_:)``,
/// and a fresh heartbeat of a connected Runner → ``Event/agentSeen(_:)``. ``Directive/dispatch(_:)`` sends a `RunRequest` over the runner's
/// stream, ``Directive/cancel(_:)`` a `RunCancel`; the `mark…` and ``Directive/complete(_:reason:)`` directives
/// are written to `status.results`, `status.counts` and the `Complete`/`Failed` conditions.
public struct RunDispatch: Sendable {
    /// The parts of the spec that steer dispatch.
    public struct Policy: Sendable, Equatable {
        public var batchSize: CountOrPercent?
        public var maxErrors: CountOrPercent?
        public var deliveryTimeout: TimeInterval
        /// How long a runner running on another replica may go without a sign of its agent before it is
        /// `Unreachable` (reason `ReplicaLost`); never less than `deliveryTimeout`, and longer than the time
        /// between two heartbeats of a connected runner, so that a live replica's runner is never taken from it.
        public var silenceTimeout: TimeInterval
        /// With several controller replicas, each following the run with its window: slots go in target order only,
        /// never to connected agents first (which differ from one replica to the next), so the windows agree.
        public var sharesWindow: Bool

        public init(
            batchSize: CountOrPercent? = nil, maxErrors: CountOrPercent? = nil, deliveryTimeout: TimeInterval = 60,
            silenceTimeout: TimeInterval = 0, sharesWindow: Bool = false
        ) {
            self.batchSize = batchSize
            self.maxErrors = maxErrors
            self.deliveryTimeout = deliveryTimeout
            self.silenceTimeout = max(silenceTimeout, deliveryTimeout)
            self.sharesWindow = sharesWindow
        }

        /// The policy of `spec`; `silenceTimeout` and `sharesWindow` as in
        /// ``init(batchSize:maxErrors:deliveryTimeout:silenceTimeout:sharesWindow:)``.
        public init(spec: RemoteRunSpec, silenceTimeout: TimeInterval = 0, sharesWindow: Bool = false) {
            self.init(
                batchSize: spec.batchSize, maxErrors: spec.maxErrors,
                deliveryTimeout: spec.effectiveDeliveryTimeout.seconds, silenceTimeout: silenceTimeout,
                sharesWindow: sharesWindow)
        }
    }

    /// Something that happened to the run or one of its runners.
    public enum Event: Sendable, Equatable {
        /// The runner's agent holds a stream and can take a run.
        case connected(String)
        /// The runner's agent stream closed.
        case disconnected(String)
        /// The agent recorded the run in its ledger (`RunAccepted`).
        case accepted(String)
        /// The process started (`RunStarted`).
        case started(String)
        /// The runner's result arrived with a final phase (`RunResult`, or `RunRefused` as `Refused`).
        case finished(String, RemoteRunSpec.Phase)
        /// With several controllers: the stored status shows a final phase for the runner, which another replica
        /// recorded (the runner's agent reported to that one). It is taken whatever this replica's own view.
        case recorded(String, RemoteRunSpec.Phase)
        /// With several controllers: the stored status shows the runner running on another replica, which its agent
        /// reports to. It takes a slot and has no deadline here: its final phase comes as ``recorded(_:_:)``, or as
        /// ``finished(_:_:)`` when its agent moves here; it is `Unreachable` (`ReplicaLost`) after `silenceTimeout`
        /// without ``agentSeen(_:)``. Sent again, it counts as a sign of life too (that replica wrote its result).
        case runningElsewhere(String)
        /// With several controllers: the stored status shows the runner `Unreachable` for `ReplicaLost`, which another
        /// replica decided. Taken as if decided here: a result its agent reports later replaces it.
        case recordedReplicaLost(String)
        /// With several controllers: the store shows the runner's agent connected, in a fresh heartbeat that the
        /// replica holding its stream wrote on its Runner. A runner running elsewhere is still in hand there.
        case agentSeen(String)
        /// `spec.suspend` was set or the RemoteRun was deleted (`Suspended`, `Deleted`).
        case stopped(reason: String)
        /// Time passed; the shell sends it at ``nextDeadline``.
        case timePassed
    }

    /// What the shell must do.
    public enum Directive: Sendable, Equatable {
        /// Send the run to this runner's agent (again, after a reconnect: the agent's ledger ignores a repeat).
        case dispatch(String)
        /// Send a cancel to this runner's agent.
        case cancel(String)
        /// Record the runner as `Unreachable`, with reason `DeliveryTimeout`, `AgentLost` or `ReplicaLost`.
        case markUnreachable(String, reason: String)
        /// Record the runner as `Skipped` (reason `MaxErrorsExceeded`).
        case markSkipped(String)
        /// Record the runner as `Cancelled`, with the stop's reason.
        case markCancelled(String, reason: String)
        /// Record the run's final phase: `Succeeded`, `Failed` (with `RunnersFailed`, `MaxErrorsExceeded` or
        /// `NoRunners`) or `Cancelled` (with the stop's reason). Sent once.
        case complete(RemoteRunSpec.Phase, reason: String?)
    }

    /// Where one runner is.
    enum Progress: Sendable, Equatable {
        case waiting
        case dispatched(at: Date)
        case accepted
        case running
        case final(RemoteRunSpec.Phase)

        var phase: RemoteRunSpec.Phase {
            switch self {
            case .waiting, .dispatched, .accepted: .pending
            case .running: .running
            case .final(let phase): phase
            }
        }

        var isFinal: Bool {
            if case .final = self { true } else { false }
        }

        var isInFlight: Bool {
            switch self {
            case .dispatched, .accepted, .running: true
            case .waiting, .final: false
            }
        }
    }

    /// A delivery deadline: a dispatch not yet accepted, or an agent lost while its runner was in flight; or a
    /// runner running on another replica with no sign of its agent since.
    private struct Deadline {
        enum Cause { case delivery, lost, silent }
        var at: Date
        var runner: String
        var cause: Cause
        /// When the dispatch, the loss or the last sign of life happened, to tell whether it still holds.
        var since: Date
    }

    /// Deadlines in the order they were set, which is their order in time, since every one is its event's time plus
    /// the same timeout; entries that no longer hold are skipped when reached.
    private struct DeadlineQueue {
        private var entries: [Deadline] = []
        private var first = 0

        mutating func append(_ deadline: Deadline) { entries.append(deadline) }

        /// The earliest deadline that still holds.
        func next(holding holds: (Deadline) -> Bool) -> Deadline? { entries[first...].first(where: holds) }

        /// The earliest deadline, whether it holds or not.
        var earliest: Deadline? { first < entries.count ? entries[first] : nil }

        mutating func removeEarliest() {
            first += 1
            if first > 1024 && first * 2 > entries.count {
                entries.removeFirst(first)
                first = 0
            }
        }
    }

    public let runners: [String]
    public let policy: Policy
    private var progress: [String: Progress]
    private var connected: Set<String>
    /// When the agent of an accepted or running runner went away.
    private var lostSince: [String: Date] = [:]
    /// Runners running on another replica, with the last sign of their agent.
    private var lastSeenElsewhere: [String: Date] = [:]
    /// Runners made `Unreachable` for `ReplicaLost`: a result their agent reports later replaces it.
    private var lostWithReplica: Set<String> = []
    private var stopReason: String?
    private var isMaxErrorsExceeded = false

    // Kept as events happen, so that an event costs what it touches rather than a pass over every runner: a run
    // of a thousand runners handles a thousand results.
    /// Runners dispatched, accepted or running.
    private var inFlight: Set<String> = []
    private var finalCount = 0
    private var errors = 0
    private var hasDispatched = false
    /// Where the search for waiting runners starts: every runner before it has left `waiting`.
    private var firstWaiting = 0
    /// Delivery and lost-agent deadlines, `deliveryTimeout` after their event.
    private var deadlines = DeadlineQueue()
    /// Deadlines of runners running elsewhere, `silenceTimeout` after their last sign of life.
    private var silenceDeadlines = DeadlineQueue()
    /// The run's final phase and reason, once ``Directive/complete(_:reason:)`` was returned.
    public private(set) var completion: (phase: RemoteRunSpec.Phase, reason: String?)?

    /// A dispatcher for `runners` (duplicates ignored), of which `connected` have an agent stream now.
    public init(runners: [String], policy: Policy, connected: Set<String> = []) {
        var seen = Set<String>()
        self.runners = runners.filter { seen.insert($0).inserted }
        self.policy = policy
        self.progress = Dictionary(uniqueKeysWithValues: self.runners.map { ($0, Progress.waiting) })
        self.connected = connected
    }

    /// The window: how many runners may be in flight at once.
    public var windowSize: Int { policy.batchSize?.resolve(total: runners.count) ?? max(1, runners.count) }

    /// How many errors the run tolerates; nil for no limit.
    public var errorAllowance: Int? { policy.maxErrors?.allowance(total: runners.count) }

    /// Takes up a run that was under way before a controller restart: runners with a final result keep it, the
    /// others are dispatched again (an agent's ledger never starts the same run twice, and answers a repeated
    /// request with the result it kept). Call before ``start(now:)``.
    public mutating func restore(finished results: [String: RemoteRunSpec.Phase]) {
        for (runner, phase) in results where phase.isFinal && progress[runner] == .waiting {
            setFinal(runner, phase)
        }
    }

    /// The first directives: the first window of dispatches (or completion, with no runners).
    public mutating func start(now: Date) -> [Directive] {
        var directives: [Directive] = []
        settle(now: now, into: &directives)
        return directives
    }

    /// Applies `event`, which happened at `now`, and returns what to do.
    public mutating func handle(_ event: Event, now: Date) -> [Directive] {
        var directives: [Directive] = []
        switch event {
        case .connected(let runner):
            connected.insert(runner)
            lostSince[runner] = nil
            // Its agent reports here now: its result comes here, or it is lost here.
            lastSeenElsewhere[runner] = nil
            if case .dispatched = progress[runner], stopReason == nil { directives.append(.dispatch(runner)) }
        case .disconnected(let runner):
            connected.remove(runner)
            if progress[runner] == .accepted || progress[runner] == .running { lose(runner, at: now) }
        case .accepted(let runner):
            if case .dispatched = progress[runner] {
                progress[runner] = .accepted
                if !connected.contains(runner) { lose(runner, at: now) }
            }
        case .started(let runner):
            switch progress[runner] {
            case .dispatched, .accepted:
                progress[runner] = .running
                if !connected.contains(runner), lostSince[runner] == nil { lose(runner, at: now) }
            default: break
            }
        case .finished(let runner, let phase):
            if replaceReplicaLost(runner, with: phase) { break }
            guard phase.isFinal, let current = progress[runner], current.isInFlight else { break }
            setFinal(runner, phase)
        case .recorded(let runner, let phase):
            if replaceReplicaLost(runner, with: phase) { break }
            if phase.isFinal { setFinal(runner, phase) }
        case .runningElsewhere(let runner):
            guard let current = progress[runner], !current.isFinal else { break }
            if current == .waiting { hasDispatched = true }
            progress[runner] = .running
            inFlight.insert(runner)
            lostSince[runner] = nil
            if !connected.contains(runner) { watchSilence(of: runner, seen: now) }
        case .agentSeen(let runner):
            if lastSeenElsewhere[runner] != nil { watchSilence(of: runner, seen: now) }
        case .recordedReplicaLost(let runner):
            guard let current = progress[runner], !current.isFinal else { break }
            setFinal(runner, .unreachable)
            lostWithReplica.insert(runner)
        case .stopped(let reason):
            guard stopReason == nil, completion == nil else { break }
            stopReason = reason
            for runner in runners {
                switch progress[runner] {
                case .waiting:
                    setFinal(runner, .cancelled)
                    directives.append(.markCancelled(runner, reason: reason))
                case .dispatched, .accepted, .running:
                    directives.append(.cancel(runner))
                default: break
                }
            }
        case .timePassed:
            break
        }
        settle(now: now, into: &directives)
        return directives
    }

    /// When the shell must send ``Event/timePassed``: the earliest delivery deadline; nil when none is pending.
    public var nextDeadline: Date? {
        [deadlines.next(holding: holds)?.at, silenceDeadlines.next(holding: holds)?.at].compactMap { $0 }.min()
    }

    /// Each runner's phase, in target order.
    public var phases: [(runner: String, phase: RemoteRunSpec.Phase)] {
        runners.map { ($0, progress[$0]?.phase ?? .pending) }
    }

    /// The phase of one runner.
    public func phase(of runner: String) -> RemoteRunSpec.Phase? { progress[runner]?.phase }

    /// Runners per phase.
    public var counts: RemoteRunSpec.Counts { RemoteRunSpec.Counts(phases: phases.map(\.phase)) }

    /// The run's phase: `Pending` before any dispatch, `Running` until complete, then its final phase.
    public var phase: RemoteRunSpec.Phase {
        if let completion { return completion.phase }
        return hasDispatched || finalCount > 0 ? .running : .pending
    }

    /// Errors so far: runners `Failed`, `TimedOut`, `Unreachable` or `Refused`.
    public var errorCount: Int { errors }

    // MARK: Transitions

    private mutating func setFinal(_ runner: String, _ phase: RemoteRunSpec.Phase) {
        guard progress[runner].map({ !$0.isFinal }) ?? false else { return }
        progress[runner] = .final(phase)
        inFlight.remove(runner)
        lostSince[runner] = nil
        lastSeenElsewhere[runner] = nil
        finalCount += 1
        if phase.isError { errors += 1 }
    }

    private mutating func dispatch(_ runner: String, at now: Date) {
        progress[runner] = .dispatched(at: now)
        inFlight.insert(runner)
        hasDispatched = true
        deadlines.append(Deadline(at: now.addingTimeInterval(policy.deliveryTimeout), runner: runner, cause: .delivery, since: now))
    }

    /// A result for a runner given up for `ReplicaLost` while the run is under way: its agent came back and told
    /// how the run ended there, which is better than what was guessed. False when it is not such a runner.
    private mutating func replaceReplicaLost(_ runner: String, with phase: RemoteRunSpec.Phase) -> Bool {
        // An agent never reports Unreachable: that is another replica's guess, not news.
        guard lostWithReplica.contains(runner), completion == nil, phase.isFinal, phase != .unreachable else {
            return false
        }
        lostWithReplica.remove(runner)
        progress[runner] = .final(phase)
        errors -= 1
        if phase.isError { errors += 1 }
        return true
    }

    /// Gives a runner running elsewhere `silenceTimeout` from `seen`, its latest sign of life.
    private mutating func watchSilence(of runner: String, seen now: Date) {
        lastSeenElsewhere[runner] = now
        silenceDeadlines.append(
            Deadline(at: now.addingTimeInterval(policy.silenceTimeout), runner: runner, cause: .silent, since: now))
    }

    private mutating func lose(_ runner: String, at now: Date) {
        lostSince[runner] = now
        deadlines.append(Deadline(at: now.addingTimeInterval(policy.deliveryTimeout), runner: runner, cause: .lost, since: now))
    }

    /// Whether a deadline still stands: its dispatch is still unaccepted, or its agent is still lost.
    private func holds(_ deadline: Deadline) -> Bool {
        switch deadline.cause {
        case .delivery: progress[deadline.runner] == .dispatched(at: deadline.since)
        case .lost:
            lostSince[deadline.runner] == deadline.since
                && (progress[deadline.runner] == .accepted || progress[deadline.runner] == .running)
        case .silent: lastSeenElsewhere[deadline.runner] == deadline.since && progress[deadline.runner] == .running
        }
    }

    // MARK: Deciding

    /// Expires deadlines, applies maxErrors, fills the window and completes the run, in that order.
    private mutating func settle(now: Date, into directives: inout [Directive]) {
        guard completion == nil else { return }
        expireDeadlines(in: \.deadlines, now: now, into: &directives)
        expireDeadlines(in: \.silenceDeadlines, now: now, into: &directives)
        if !isMaxErrorsExceeded, stopReason == nil, let allowance = errorAllowance, errorCount > allowance {
            isMaxErrorsExceeded = true
            for runner in runners {
                switch progress[runner] {
                case .waiting:
                    setFinal(runner, .skipped)
                    directives.append(.markSkipped(runner))
                case .dispatched, .accepted:
                    directives.append(.cancel(runner))
                default: break
                }
            }
        }
        if stopReason == nil && !isMaxErrorsExceeded {
            fillWindow(now: now, into: &directives)
        }
        guard finalCount == runners.count else { return }
        let result: (RemoteRunSpec.Phase, String?)
        if let stopReason {
            result = (.cancelled, stopReason)
        } else if runners.isEmpty {
            result = (.failed, "NoRunners")
        } else if isMaxErrorsExceeded {
            result = (.failed, "MaxErrorsExceeded")
        } else if progress.values.allSatisfy({ $0.phase == .succeeded }) {
            result = (.succeeded, nil)
        } else {
            result = (.failed, "RunnersFailed")
        }
        completion = result
        directives.append(.complete(result.0, reason: result.1))
    }

    /// Makes `Unreachable` the runners whose deadline in `queue` passed and still holds.
    private mutating func expireDeadlines(
        in queue: WritableKeyPath<RunDispatch, DeadlineQueue>, now: Date, into directives: inout [Directive]
    ) {
        while let deadline = self[keyPath: queue].earliest, deadline.at <= now || !holds(deadline) {
            self[keyPath: queue].removeEarliest()
            guard holds(deadline) else { continue }
            setFinal(deadline.runner, .unreachable)
            let reason: String
            switch deadline.cause {
            case .delivery: reason = "DeliveryTimeout"
            case .lost: reason = "AgentLost"
            case .silent:
                reason = "ReplicaLost"
                lostWithReplica.insert(deadline.runner)
            }
            directives.append(.markUnreachable(deadline.runner, reason: reason))
        }
    }

    /// Dispatches waiting runners into the free slots of the window, in target order, those with an agent
    /// connected first unless the window is shared (then a runner's agent counts as connected wherever it is).
    private mutating func fillWindow(now: Date, into directives: inout [Directive]) {
        var free = windowSize - inFlight.count
        guard free > 0 else { return }
        while firstWaiting < runners.count, progress[runners[firstWaiting]] != .waiting { firstWaiting += 1 }
        var unconnected: [String] = []
        var index = firstWaiting
        while index < runners.count && free > 0 {
            let runner = runners[index]
            index += 1
            guard progress[runner] == .waiting else { continue }
            if connected.contains(runner) || policy.sharesWindow {
                dispatch(runner, at: now)
                directives.append(.dispatch(runner))
                free -= 1
            } else if unconnected.count < free {
                unconnected.append(runner)
            }
        }
        for runner in unconnected where free > 0 {
            dispatch(runner, at: now)
            directives.append(.dispatch(runner))
            free -= 1
        }
    }
}
