import Foundation
import Resources

/// The decisions of one RemoteRun as a value: which runner to send it to next, which to give up on, when the
/// run is over. No I/O and no clock: the shell passes each event with the time it happened and carries out the
/// directives returned.
///
/// - **Rolling window.** At most `batchSize` runners are in flight (dispatched, accepted or running). A slot frees
///   when a runner reaches a final phase, never on a timer. Free slots go to runners whose agent is connected first,
///   in target order, so that a disconnected agent delays only itself; then to the others, which then have
///   `deliveryTimeout` to connect and take the run.
/// - **Delivery timeout.** A runner that has not accepted the run `deliveryTimeout` after it was dispatched is
///   `Unreachable` (reason `DeliveryTimeout`); so is one that accepted or started it and whose agent went away and
///   did not come back in that time (reason `AgentLost`).
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
/// ``Event/timePassed`` at ``nextDeadline``. ``Directive/dispatch(_:)`` sends a `RunRequest` over the runner's
/// stream, ``Directive/cancel(_:)`` a `RunCancel`; the `mark…` and ``Directive/complete(_:reason:)`` directives
/// are written to `status.results`, `status.counts` and the `Complete`/`Failed` conditions.
public struct RunDispatch: Sendable {
    /// The parts of the spec that steer dispatch.
    public struct Policy: Sendable, Equatable {
        public var batchSize: CountOrPercent?
        public var maxErrors: CountOrPercent?
        public var deliveryTimeout: TimeInterval

        public init(
            batchSize: CountOrPercent? = nil, maxErrors: CountOrPercent? = nil, deliveryTimeout: TimeInterval = 60
        ) {
            self.batchSize = batchSize
            self.maxErrors = maxErrors
            self.deliveryTimeout = deliveryTimeout
        }

        public init(spec: RemoteRunSpec) {
            self.init(
                batchSize: spec.batchSize, maxErrors: spec.maxErrors,
                deliveryTimeout: spec.effectiveDeliveryTimeout.seconds)
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
        /// Record the runner as `Unreachable`, with reason `DeliveryTimeout` or `AgentLost`.
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

        var isInFlight: Bool {
            switch self {
            case .dispatched, .accepted, .running: true
            case .waiting, .final: false
            }
        }
    }

    public let runners: [String]
    public let policy: Policy
    private var progress: [String: Progress]
    private var connected: Set<String>
    /// When the agent of an accepted or running runner went away.
    private var lostSince: [String: Date] = [:]
    private var stopReason: String?
    private var isMaxErrorsExceeded = false
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
        for (runner, phase) in results where phase.isFinal && progress[runner] != nil {
            progress[runner] = .final(phase)
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
            if case .dispatched = progress[runner], stopReason == nil { directives.append(.dispatch(runner)) }
        case .disconnected(let runner):
            connected.remove(runner)
            if progress[runner] == .accepted || progress[runner] == .running { lostSince[runner] = now }
        case .accepted(let runner):
            if case .dispatched = progress[runner] {
                progress[runner] = .accepted
                if !connected.contains(runner) { lostSince[runner] = now }
            }
        case .started(let runner):
            switch progress[runner] {
            case .dispatched, .accepted:
                progress[runner] = .running
                if !connected.contains(runner) { lostSince[runner] = lostSince[runner] ?? now }
            default: break
            }
        case .finished(let runner, let phase):
            guard phase.isFinal, let current = progress[runner], current.isInFlight else { break }
            progress[runner] = .final(phase)
        case .stopped(let reason):
            guard stopReason == nil, completion == nil else { break }
            stopReason = reason
            for runner in runners {
                switch progress[runner] {
                case .waiting:
                    progress[runner] = .final(.cancelled)
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
        progress.compactMap { runner, state -> Date? in
            switch state {
            case .dispatched(let at): at.addingTimeInterval(policy.deliveryTimeout)
            case .accepted, .running: lostSince[runner]?.addingTimeInterval(policy.deliveryTimeout)
            default: nil
            }
        }.min()
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
        return progress.values.allSatisfy { $0 == .waiting } ? .pending : .running
    }

    /// Errors so far: runners `Failed`, `TimedOut`, `Unreachable` or `Refused`.
    public var errorCount: Int { progress.values.count { $0.phase.isFinal && $0.phase.isError } }

    // MARK: Deciding

    /// Expires deadlines, applies maxErrors, fills the window and completes the run, in that order.
    private mutating func settle(now: Date, into directives: inout [Directive]) {
        guard completion == nil else { return }
        for runner in runners {
            switch progress[runner] {
            case .dispatched(let at) where at.addingTimeInterval(policy.deliveryTimeout) <= now:
                progress[runner] = .final(.unreachable)
                directives.append(.markUnreachable(runner, reason: "DeliveryTimeout"))
            case .accepted, .running:
                guard let lost = lostSince[runner], lost.addingTimeInterval(policy.deliveryTimeout) <= now else {
                    break
                }
                progress[runner] = .final(.unreachable)
                lostSince[runner] = nil
                directives.append(.markUnreachable(runner, reason: "AgentLost"))
            default: break
            }
        }
        if !isMaxErrorsExceeded, stopReason == nil, let allowance = errorAllowance, errorCount > allowance {
            isMaxErrorsExceeded = true
            for runner in runners {
                switch progress[runner] {
                case .waiting:
                    progress[runner] = .final(.skipped)
                    directives.append(.markSkipped(runner))
                case .dispatched, .accepted:
                    directives.append(.cancel(runner))
                default: break
                }
            }
        }
        if stopReason == nil && !isMaxErrorsExceeded {
            var free = windowSize - progress.values.count(where: \.isInFlight)
            let waiting = runners.filter { progress[$0] == .waiting }
            let ordered = waiting.filter { connected.contains($0) } + waiting.filter { !connected.contains($0) }
            for runner in ordered where free > 0 {
                progress[runner] = .dispatched(at: now)
                directives.append(.dispatch(runner))
                free -= 1
            }
        }
        guard progress.values.allSatisfy({ $0.phase.isFinal }) else { return }
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
}
