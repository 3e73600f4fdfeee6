import Foundation
import Resources

/// Runs the agent's own run command on its Runner's `spec.schedule`: the thin actor around a ``RunSchedule``.
///
/// ``update(_:)`` gives it the schedule the slice holds (nil when it has none): a different one replaces the
/// schedule, from the next grid point on, once no run is going. ``run()`` sleeps until the next start (woken early
/// only by an update, never on a tick), runs the slot's request through ``RunService/runScheduled(_:onStart:)``
/// (the ledger keeps a slot from starting twice, `maxDuration` is the run's timeout), and waits for it to end
/// before it looks at the schedule again, so runs never overlap: the starts that pass meanwhile are missed.
///
/// Wiring: the agent runs ``run()`` for its whole life, calls ``update(_:)`` with its slice's schedule at start
/// and after each slice it applies, and puts what `report` gets (the run going, then its result) in its next
/// report as the Runner's `status.lastRun`.
public actor RunScheduler {
    /// What time it is; injected so tests can run a schedule from any instant.
    public typealias Now = @Sendable () -> Date
    /// Hands over the latest run's summary: once when it starts (`Running`), once when it ends.
    public typealias Report = @Sendable (RunnerSpec.RunSummary) async -> Void

    private let runner: String
    private let runs: RunService
    private let now: Now
    private let report: Report
    /// The schedule the slice holds now, and the one in effect (they differ until the loop adopts the new one).
    private var desired: RunnerSpec.Schedule?
    private var adopted: RunnerSpec.Schedule?
    private var schedule: RunSchedule?
    /// Wakes the loop's sleep when the schedule changes.
    private let changed = WakeSignal()

    public init(runner: String, runs: RunService, now: @escaping Now = { Date() }, report: @escaping Report) {
        self.runner = runner
        self.runs = runs
        self.now = now
        self.report = report
    }

    /// The schedule now in effect, nil when none.
    public var current: RunSchedule? { schedule }

    /// The slice's schedule changed (or is given for the first time); nil removes it.
    public func update(_ schedule: RunnerSpec.Schedule?) {
        desired = schedule
        changed.signal()
    }

    /// Runs the schedule until the calling task is cancelled (a run going then is stopped by the executor).
    public func run() async {
        while !Task.isCancelled {
            if desired != adopted {
                adopted = desired
                schedule = desired.map { RunSchedule($0, runner: runner, now: now()) }
            }
            guard var schedule else {
                await sleep(until: nil)
                continue
            }
            let slot = schedule.nextStart
            let action = schedule.next(now: now())
            self.schedule = schedule
            switch action {
            case .wait(let until):
                await sleep(until: until)
            case .start:
                await runSlot(startingAt: slot, schedule)
                self.schedule?.finished(at: now())
            }
        }
    }

    private func runSlot(startingAt slot: Date, _ schedule: RunSchedule) async {
        let report = self.report
        let request = schedule.request(startingAt: slot)
        let result = await runs.runScheduled(request) { time in
            await report(
                RunnerSpec.RunSummary(
                    phase: .running, startTime: Timestamp.format(time), trigger: RunnerSpec.RunSummary.scheduleTrigger))
        }
        if let result { await report(RunSchedule.summary(of: result)) }
    }

    /// Sleeps until `deadline` (forever when nil), an ``update(_:)``, or cancellation.
    private func sleep(until deadline: Date?) async {
        guard let deadline else {
            await changed.wait()
            return
        }
        let milliseconds = Int64((deadline.timeIntervalSince(now()) * 1000).rounded(.up))
        guard milliseconds > 0 else { return }
        await changed.wait(timeout: .milliseconds(milliseconds))
    }
}
