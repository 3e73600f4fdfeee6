import Agent
import Foundation
import Logging
import Resources
import SteadyTesting
import Testing

/// The agent's scheduled runs with real processes on a one-second schedule: runs start on their own, never
/// overlap, stop at `maxDuration`, never start one slot twice, and report each run for `status.lastRun`.
@Suite(.timeLimit(.minutes(2))) struct RunSchedulerTests {
    /// The summaries the scheduler reported, in order, and a stream of them to wait on.
    final class Reports: Sendable {
        let stream: AsyncStream<RunnerSpec.RunSummary>
        let continuation: AsyncStream<RunnerSpec.RunSummary>.Continuation

        init() { (stream, continuation) = AsyncStream.makeStream() }

        /// The first `count` summaries of ended runs, and every summary up to the last of them.
        func finals(_ count: Int) async -> (finals: [RunnerSpec.RunSummary], all: [RunnerSpec.RunSummary]) {
            var all: [RunnerSpec.RunSummary] = []
            var finals: [RunnerSpec.RunSummary] = []
            for await summary in stream {
                all.append(summary)
                if summary.phase != .running { finals.append(summary) }
                if finals.count == count { break }
            }
            return (finals, all)
        }
    }

    var logger: Logger {
        var logger = Logger(label: "run-scheduler-test")
        logger.logLevel = .critical
        return logger
    }

    func makeService(_ directory: TemporaryDirectory, runCommand: String) throws -> RunService {
        let executor = RunExecutor(
            configuration: .init(
                runner: "web-1", runCommand: ["/bin/sh", "-c", runCommand], allowsExec: false,
                killGracePeriod: .milliseconds(300)))
        return RunService(
            executor: executor, ledger: try RunLedger(directory: directory.path, logger: logger), logger: logger)
    }

    /// Runs a scheduler over `service` with `schedule` until `body` returns.
    func withScheduler<T: Sendable>(
        _ service: RunService, _ schedule: RunnerSpec.Schedule, reports: Reports,
        _ body: @Sendable (RunScheduler) async throws -> T
    ) async throws -> T {
        let scheduler = RunScheduler(runner: "web-1", runs: service) { reports.continuation.yield($0) }
        await scheduler.update(schedule)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await scheduler.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body(scheduler)
        }
    }

    @Test func runsStartOnScheduleNeverOverlapAndAreReported() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = directory.file("schedule-marks.log").path
        // Each run outlasts the one-second interval: the starts that pass meanwhile are missed, not stacked.
        let service = try makeService(
            directory, runCommand: "echo start >> \(log); sleep 1.5; echo end >> \(log); echo done")
        let reports = Reports()
        let (finals, all) = try await withScheduler(
            service, RunnerSpec.Schedule(interval: DurationString(seconds: 1)), reports: reports
        ) { _ in await reports.finals(2) }

        #expect(finals.count == 2)
        for summary in finals {
            #expect(summary.phase == .succeeded)
            #expect(summary.exitCode == 0)
            #expect(summary.outputBytes == 5)
            #expect(summary.trigger == "schedule")
            #expect(summary.startTime != nil && summary.completionTime != nil)
        }
        // Each run is reported running, then ended.
        #expect(all.map { $0.phase == .running } == [true, false, true, false])
        #expect(all[0].startTime == finals[0].startTime)
        #expect(finals[0].startTime != finals[1].startTime)
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(Array(lines.prefix(4)) == ["start", "end", "start", "end"])
        #expect(await service.lastScheduledResult?.phase == .succeeded)
    }

    @Test func aRunLongerThanMaxDurationIsStoppedAsTimedOut() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let service = try makeService(directory, runCommand: "exec sleep 60")
        let reports = Reports()
        let schedule = RunnerSpec.Schedule(
            interval: DurationString(seconds: 1), maxDuration: DurationString(seconds: 0.3))
        let (finals, _) = try await withScheduler(service, schedule, reports: reports) { _ in await reports.finals(1) }
        #expect(finals.first?.phase == .timedOut)
        #expect(finals.first?.reason == "Timeout")
        #expect(finals.first?.signal == Int(SIGTERM))
    }

    @Test func aSlotStartsOnceAcrossRestartsAndItsResultIsKept() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let counter = directory.file("count").path
        let schedule = RunSchedule(interval: 60, runner: "web-1", now: Date(timeIntervalSince1970: 1_800_000_000))
        let request = schedule.request(startingAt: schedule.nextStart)
        let first = try makeService(directory, runCommand: "echo x >> \(counter)")
        #expect(await first.runScheduled(request)?.phase == .succeeded)
        #expect(await first.runScheduled(request) == nil)
        // A new agent on the same state directory: the slot is known, and its result is the last run.
        let restarted = try makeService(directory, runCommand: "echo x >> \(counter)")
        #expect(await restarted.runScheduled(request) == nil)
        #expect(await restarted.lastScheduledResult?.runUID == request.runUID)
        #expect(try String(contentsOfFile: counter, encoding: .utf8) == "x\n")
        // Reported in the agent's report, never re-sent on the stream.
        let ledger = try RunLedger(directory: directory.path, logger: logger)
        #expect(ledger.unacknowledgedResults.isEmpty)
    }

    @Test func aNewScheduleReplacesTheOldOne() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let service = try makeService(directory, runCommand: "true")
        let reports = Reports()
        let hourly = RunnerSpec.Schedule(interval: DurationString(seconds: 3600))
        try await withScheduler(service, hourly, reports: reports) { scheduler in
            await scheduler.update(RunnerSpec.Schedule(interval: DurationString(seconds: 1)))
            // The hourly schedule would not start for up to an hour: a run now comes from the new one.
            let (finals, _) = await reports.finals(1)
            #expect(finals.first?.phase == .succeeded)
            #expect(await scheduler.current?.interval == 1)
        }
    }

    @Test func theSliceHoldsOnlyItsOwnRunnerAndGivesItsSchedule() {
        let validator = SliceValidator(allowsExec: false, runner: "web-1")
        func runner(_ name: String) -> JSONValue {
            [
                "apiVersion": "steady.dev/v1", "kind": "Runner", "metadata": ["name": .string(name)],
                "spec": ["schedule": ["interval": "2s", "splay": "1s"]],
            ]
        }
        let own = SliceKey(kind: RunnerSpec.kind, name: "web-1")
        #expect(validator.problem(with: runner("web-1"), key: own) == nil)
        let other = SliceKey(kind: RunnerSpec.kind, name: "web-2")
        guard case .invalid(let message) = validator.problem(with: runner("web-2"), key: other) else {
            Issue.record("another runner's Runner was accepted")
            return
        }
        #expect(message.contains("own runner"))
        let slice = RunnerSlice(revision: 1, objects: [own: runner("web-1")])
        #expect(slice.schedule(of: "web-1")?.interval.seconds == 2)
        #expect(slice.schedule(of: "web-1")?.splay?.seconds == 1)
        #expect(RunnerSlice.empty.schedule(of: "web-1") == nil)
    }
}
