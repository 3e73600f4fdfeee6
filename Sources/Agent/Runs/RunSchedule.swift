import Foundation
import Resources

/// When a runner's agent runs its own run command by itself (Runner `spec.schedule`), as Rudder's agents do every
/// five minutes. A value: time is always a parameter.
///
/// Start times lie on a grid of `interval` counted from the Unix epoch, shifted by an offset within `splay` that is
/// a hash (FNV-1a, stable across processes and hosts) of the runner's name. So a fleet with the same schedule does
/// not start at once, and each runner starts at the same moments after every restart. A run still going when its
/// next start comes is not started again: that start is missed, and the next one is the first after it ends.
/// `maxDuration` becomes the run's timeout, so ``RunExecutor`` stops it like any other timed-out run.
///
/// Wiring: ``RunScheduler`` keeps one from the Runner in the agent's slice (replaced when its `spec.schedule`
/// changes), sleeps until ``next(now:)`` says `.start`, runs ``request(startingAt:)`` (the slot's start) through the
/// `RunLedger` and ``RunExecutor`` (``RunService/runScheduled(_:onStart:)``), then calls ``finished(at:)``; the
/// agent reports the result as the Runner's `status.lastRun`.
public struct RunSchedule: Sendable, Equatable {
    /// How the run UIDs of scheduled runs start.
    public static let runUIDPrefix = RunProtocol.scheduledRunUIDPrefix

    /// What to do now.
    public enum Action: Sendable, Equatable {
        /// Start a run now (the schedule now counts it as running).
        case start
        /// Nothing until this instant, or until the running run finishes when nil.
        case wait(until: Date?)
    }

    public let interval: TimeInterval
    public let splay: TimeInterval
    public let maxDuration: TimeInterval?
    /// This runner's shift within `splay`, in `[0, splay)`, whole milliseconds.
    public let offset: TimeInterval
    public let runner: String
    /// The next start.
    public private(set) var nextStart: Date
    /// When the running run started; nil when none runs.
    public private(set) var runningSince: Date?

    /// A schedule for `runner`, whose first start is the first grid point after `now`.
    public init(
        interval: TimeInterval, splay: TimeInterval = 0, maxDuration: TimeInterval? = nil, runner: String, now: Date
    ) {
        self.interval = max(interval, 1)
        self.splay = max(splay, 0)
        self.maxDuration = maxDuration
        self.runner = runner
        let milliseconds = UInt64(self.splay * 1000)
        offset = milliseconds == 0 ? 0 : Double(Self.fnv1a(runner) % milliseconds) / 1000
        nextStart = .distantPast
        nextStart = start(after: now)
    }

    /// A schedule from a Runner's `spec.schedule`.
    public init(_ schedule: RunnerSpec.Schedule, runner: String, now: Date) {
        self.init(
            interval: schedule.interval.seconds, splay: schedule.splay?.seconds ?? 0,
            maxDuration: schedule.maxDuration?.seconds, runner: runner, now: now)
    }

    /// The first start strictly after `instant`.
    public func start(after instant: Date) -> Date {
        let shifted = instant.timeIntervalSince1970 - offset
        let slot = (shifted / interval).rounded(.down) + 1
        return Date(timeIntervalSince1970: slot * interval + offset)
    }

    /// Whether to start now, or how long to wait.
    public mutating func next(now: Date) -> Action {
        if runningSince != nil { return .wait(until: nil) }
        guard now >= nextStart else { return .wait(until: nextStart) }
        runningSince = now
        nextStart = start(after: now)
        return .start
    }

    /// The running run ended at `instant`. Starts that passed while it ran are missed, not made up.
    public mutating func finished(at instant: Date) {
        runningSince = nil
        if nextStart <= instant { nextStart = start(after: instant) }
    }

    /// The request for the run starting at `start`: the agent's own run command, `maxDuration` as its timeout, and
    /// a run UID unique to the start (the ledger is this runner's own), so the ledger never starts one slot twice.
    public func request(
        startingAt start: Date, maxOutputBytes: Int = RunProtocol.defaultMaximumOutputBytes
    ) -> RunRequest {
        RunRequest(
            runUID: "\(Self.runUIDPrefix)\(Int64((start.timeIntervalSince1970 * 1000).rounded()))", runName: "schedule",
            timeoutMilliseconds: maxDuration.map { Int64(($0 * 1000).rounded()) }, maxOutputBytes: maxOutputBytes)
    }

    /// A run's result as the Runner's `status.lastRun`.
    public static func summary(of result: RunResult) -> RunnerSpec.RunSummary {
        RunnerSpec.RunSummary(
            phase: result.phase, exitCode: result.exitCode, signal: result.signal, startTime: result.startTime,
            completionTime: result.completionTime, outputBytes: result.outputBytes,
            outputTruncated: result.outputTruncated, reason: result.reason, message: result.message,
            trigger: RunnerSpec.RunSummary.scheduleTrigger)
    }

    /// FNV-1a, 64 bits: the same value for the same name in every process (Swift's `hashValue` is seeded per
    /// process).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
