import Foundation
import Resources
import SteadyTesting
import Testing

/// Runner `spec.schedule` with a real controller and agent: the agent runs its own run command on schedule, one run
/// at a time, records each in `status.lastRun` (its output for `steady logs runner/NAME`), and keeps its schedule
/// while the controller is down.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ScheduledRunEndToEndTests {
    /// The Runner's `status.lastRun`, read with `steady get -o json`.
    func lastRun(_ controller: ControllerProcess) -> JSONValue? {
        guard let result = try? controller.run("steady", ["get", "runner", "web-1", "-o", "json"]), result.status == 0
        else { return nil }
        return (try? JSONValue.parse(Data(result.output.utf8)))?["status"]?["lastRun"]
    }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test func theAgentRunsOnScheduleWithoutOverlapAndRecordsLastRun() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let joinToken = try controller.joinToken()
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: Runner
            metadata: {name: web-1, labels: {role: web}}
            spec:
              schedule: {interval: 2s, splay: 1s}
            """)
        let agent = try AgentProcess(name: "web-1")
        defer { agent.remove() }
        // Not `runs.log`: that is the agent's run ledger.
        let log = agent.stateDirectory.file("schedule-marks.log").path
        // Each run writes a start and an end line around a pause, and "ok\n" (3 bytes) to its output.
        try agent.start(
            controller: controller, joinToken: joinToken,
            runCommand: "/bin/sh -c 'echo start >> \(log); sleep 0.5; echo end >> \(log); echo ok'")

        #expect(
            eventually(timeout: .seconds(60)) { lines(log).filter { $0 == "end" }.count >= 2 },
            "\(lines(log))\n\(agent.log())")
        #expect(agent.sliceKeys().contains("Runner/web-1"), "\(agent.sliceKeys())")
        // One run at a time: every start is followed by its end before the next start.
        let finished = lines(log)
        let pairs = finished.count / 2
        #expect(pairs >= 2)
        #expect(Array(finished.prefix(pairs * 2)) == Array(repeating: ["start", "end"], count: pairs).flatMap { $0 })

        #expect(
            eventually(timeout: .seconds(30)) { lastRun(controller)?["phase"] == "Succeeded" },
            "\(String(describing: lastRun(controller)))\n\(controller.log())")
        let recorded = lastRun(controller)
        #expect(recorded?["trigger"] == "schedule")
        #expect(recorded?["exitCode"] == 0)
        #expect(recorded?["outputBytes"] == 3)
        #expect(recorded?["startTime"]?.stringValue != nil)
        let completed = try #require(recorded?["completionTime"]?.stringValue)
        // The latest scheduled run's output is kept on the controller (a run just started may have none yet).
        #expect(
            eventually(timeout: .seconds(30)) {
                (try? controller.run("steady", ["logs", "runner/web-1"]))?.output == "ok\n"
            }, "\(String(describing: try? controller.run("steady", ["logs", "runner/web-1"])))")

        // With the controller down, the agent (restarted too) runs on the schedule it kept in its slice.
        let port = controller.port
        controller.stop(signal: SIGKILL)
        agent.stop()
        let endsBefore = lines(log).filter { $0 == "end" }.count
        try agent.start(
            controller: controller, joinToken: nil, runCommand: "/bin/sh -c 'echo start >> \(log); echo end >> \(log)'")
        #expect(
            eventually(timeout: .seconds(60)) { lines(log).filter { $0 == "end" }.count > endsBefore },
            "\(lines(log))\n\(agent.log())")

        // Back up, the controller hears of the newer run.
        try controller.start(port: port)
        #expect(
            eventually(timeout: .seconds(60)) {
                guard let time = lastRun(controller)?["completionTime"]?.stringValue else { return false }
                return time != completed && lastRun(controller)?["outputBytes"] == 0
            }, "\(String(describing: lastRun(controller)))\n\(agent.log())")
    }
}
