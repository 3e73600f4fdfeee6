import Foundation
import Resources
import SteadyTesting
import Testing

@testable import Reconciler

/// The output of a runner's latest scheduled run, kept per runner; a new run replaces the previous one's.
@Suite(.timeLimit(.minutes(1))) struct ScheduledRunOutputTests {
    static func started(_ uid: String) -> RunAgentMessage {
        .started(RunStarted(runUID: uid, startTime: "2026-12-01T10:00:00Z"))
    }

    static func output(_ uid: String, _ text: String, sequence: Int64 = 0) -> RunAgentMessage {
        .output(RunOutputChunk(runUID: uid, stream: .stdout, sequence: sequence, bytes: Array(text.utf8)))
    }

    static func result(_ uid: String) -> RunAgentMessage {
        .result(RunResult(runUID: uid, phase: .succeeded, exitCode: 0, completionTime: "2026-12-01T10:00:01Z"))
    }

    static func text(_ store: RunOutputStore, _ runner: String) -> String {
        let outputs = store.outputs(run: ScheduledRunOutput.run(of: runner), runner: runner)
        return String(decoding: outputs.flatMap { $0.head + $0.tail }.flatMap(\.bytes), as: UTF8.self)
    }

    @Test func eachRunnerKeepsItsLatestRunOnly() throws {
        let directory = try TemporaryDirectory(prefix: "steady-scheduled-output")
        defer { directory.remove() }
        let store = RunOutputStore(directory: directory.url)
        let scheduled = ScheduledRunOutput(store: store)
        #expect(ScheduledRunOutput.isScheduled(Self.started("schedule.1800000000000")))
        #expect(!ScheduledRunOutput.isScheduled(Self.started("0b7c61f2-8a4e-4a61-9f7e-4f3f1f7a9d21")))

        for message in [Self.started("schedule.1"), Self.output("schedule.1", "first\n"), Self.result("schedule.1")] {
            scheduled.receive(runner: "web-1", message)
        }
        scheduled.receive(runner: "web-2", Self.started("schedule.1"))
        scheduled.receive(runner: "web-2", Self.output("schedule.1", "other\n"))
        #expect(Self.text(store, "web-1") == "first\n")

        // The next run's start drops the previous output; web-2's is its own.
        scheduled.receive(runner: "web-1", Self.started("schedule.2"))
        #expect(Self.text(store, "web-1") == "")
        scheduled.receive(runner: "web-1", Self.output("schedule.2", "second\n"))
        scheduled.receive(runner: "web-1", Self.result("schedule.2"))
        #expect(Self.text(store, "web-1") == "second\n")
        #expect(Self.text(store, "web-2") == "other\n")
    }
}
