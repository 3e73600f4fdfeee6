import Foundation
import Resources
import SteadyTesting
import Testing

/// The life of a RemoteRun on real agents, beyond a plain run: timeouts and cancellation kill the whole process
/// group, batches never overlap, maxErrors stops new starts, a run survives a controller SIGKILL without starting
/// twice, and a finished run is deleted after its TTL.
@Suite(.serialized, .timeLimit(.minutes(4))) struct RemoteRunLifecycleTests: RemoteRunReading {

    func phase(_ controller: ControllerProcess, _ name: String) -> String? {
        status(controller, name)?["phase"]?.stringValue
    }

    func isFinal(_ phase: String?) -> Bool {
        ["Succeeded", "Failed"].contains(phase ?? "")
    }

    /// Whether a process with this pid exists (a zombie counts as gone: it no longer runs).
    func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?
            .split(separator: ")").last?.split(separator: " ").first
        return state != "Z"
    }

    func pid(in file: URL) -> Int32? {
        (try? String(contentsOf: file, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Starts agents allowed to run explicit commands, labelled `role: work`, and waits until the controller
    /// lists them.
    func startAgents(_ names: [String], controller: ControllerProcess) throws -> [AgentProcess] {
        let joinToken = try controller.joinToken()
        var agents: [AgentProcess] = []
        for name in names {
            let agent = try AgentProcess(name: name)
            try agent.start(controller: controller, joinToken: joinToken, labels: ["role": "work"], allowExec: true)
            agents.append(agent)
        }
        #expect(eventually(timeout: .seconds(30)) {
            let listed = (try? controller.run("steady", ["get", "runners", "-o", "name"]).output) ?? ""
            return names.allSatisfy(listed.contains)
        })
        return agents
    }

    @Test func aTimeoutAndADeleteKillTheWholeProcessGroup() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let agents = try startAgents(["worker-1"], controller: controller)
        defer { agents.forEach { $0.remove() } }
        let scratch = try TemporaryDirectory(prefix: "steady-run-lifecycle")
        defer { scratch.remove() }

        // The shell starts a child in the background and waits: killing only the shell would leave the child.
        let timedOutChild = scratch.file("timed-out.pid")
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: slow}
            spec:
              target: {runners: [worker-1]}
              command: [/bin/sh, -c, "sleep 120 & echo $! > \(timedOutChild.path); wait"]
              timeout: 2s
            """)
        #expect(
            eventually(timeout: .seconds(60)) { isFinal(phase(controller, "slow")) },
            "\(String(describing: status(controller, "slow")))")
        #expect(result(status(controller, "slow"), "worker-1")?["phase"] == "TimedOut")
        let child = try #require(pid(in: timedOutChild))
        #expect(eventually(timeout: .seconds(20)) { !isAlive(child) }, "the timed-out run's child \(child) still runs")

        // Deleting a run under way stops it, child processes included.
        let cancelledChild = scratch.file("cancelled.pid")
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: long}
            spec:
              target: {runners: [worker-1]}
              command: [/bin/sh, -c, "sleep 120 & echo $! > \(cancelledChild.path); wait"]
            """)
        #expect(eventually(timeout: .seconds(60)) { pid(in: cancelledChild) != nil })
        let running = try #require(pid(in: cancelledChild))
        #expect(isAlive(running))
        let deleted = try controller.run("steady", ["delete", "remoterun", "long"])
        #expect(deleted.status == 0, "\(deleted)")
        #expect(eventually(timeout: .seconds(20)) { !isAlive(running) }, "the deleted run's child \(running) still runs")
    }

    @Test func batchesDoNotOverlapAndMaxErrorsStopsNewStarts() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let names = ["batch-1", "batch-2", "batch-3"]
        let agents = try startAgents(names, controller: controller)
        defer { agents.forEach { $0.remove() } }
        let scratch = try TemporaryDirectory(prefix: "steady-run-batches")
        defer { scratch.remove() }

        // Each runner writes when it starts and ends, in nanoseconds; with a batch of one, no two intervals overlap.
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: rolling}
            spec:
              target: {runnerSelector: {matchLabels: {role: work}}}
              command: [/bin/sh, -c, "date +%s%N > \(scratch.path)/$STEADY_RUNNER.start; sleep 0.5; date +%s%N > \(scratch.path)/$STEADY_RUNNER.end"]
              batchSize: 1
            """)
        #expect(
            eventually(timeout: .seconds(90)) { isFinal(phase(controller, "rolling")) },
            "\(String(describing: status(controller, "rolling")))")
        #expect(phase(controller, "rolling") == "Succeeded", "\(String(describing: status(controller, "rolling")))")
        func instant(_ runner: String, _ suffix: String) -> UInt64? {
            (try? String(contentsOf: scratch.file("\(runner).\(suffix)"), encoding: .utf8))
                .flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        let intervals = names.compactMap { name in
            instant(name, "start").flatMap { start in instant(name, "end").map { (start, $0) } }
        }.sorted { $0.0 < $1.0 }
        #expect(intervals.count == 3)
        for (earlier, later) in zip(intervals, intervals.dropFirst()) {
            #expect(earlier.1 <= later.0, "runs overlapped: \(intervals)")
        }

        // With no error allowed, the first failure skips the runners not yet started.
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: failing}
            spec:
              target: {runnerSelector: {matchLabels: {role: work}}}
              command: [/bin/sh, -c, "exit 7"]
              batchSize: 1
              maxErrors: 0
            """)
        #expect(
            eventually(timeout: .seconds(90)) { isFinal(phase(controller, "failing")) },
            "\(String(describing: status(controller, "failing")))")
        let final = status(controller, "failing")
        let phases = names.compactMap { result(final, $0)?["phase"]?.stringValue }
        #expect(phases.filter { $0 == "Failed" }.count == 1, "\(phases)")
        #expect(phases.filter { $0 == "Skipped" }.count == 2, "\(phases)")
        let failed = final?["conditions"]?.arrayValue?.first { $0["type"] == "Failed" }
        #expect(failed?["reason"] == "MaxErrorsExceeded", "\(String(describing: final))")
    }

    @Test func aRunSurvivesAControllerKillWithoutASecondStart() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let agents = try startAgents(["steady-1"], controller: controller)
        defer { agents.forEach { $0.remove() } }
        let scratch = try TemporaryDirectory(prefix: "steady-run-restart")
        defer { scratch.remove() }
        let starts = scratch.file("starts")
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: survivor}
            spec:
              target: {runners: [steady-1]}
              command: [/bin/sh, -c, "echo started >> \(starts.path); sleep 4; exit 0"]
              ttlSecondsAfterFinished: 3
            """)
        #expect(eventually(timeout: .seconds(60)) { FileManager.default.fileExists(atPath: starts.path) })
        // The controller dies while the run is going; the agent keeps running it and reports after the restart.
        try controller.restart(signal: SIGKILL)
        #expect(
            eventually(timeout: .seconds(90)) { isFinal(phase(controller, "survivor")) },
            "\(String(describing: status(controller, "survivor")))\n\(controller.log())")
        #expect(result(status(controller, "survivor"), "steady-1")?["phase"] == "Succeeded")
        #expect(result(status(controller, "survivor"), "steady-1")?["exitCode"] == 0)
        let lines = (try? String(contentsOf: starts, encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(lines.count == 1, "the run started \(lines.count) times")

        // ttlSecondsAfterFinished: the finished run is deleted, by the controller that restarted.
        #expect(eventually(timeout: .seconds(60)) {
            let got = try? controller.run("steady", ["get", "remoterun", "survivor"])
            return got.map { $0.status != 0 } ?? false
        }, "the run was not deleted after its TTL\n\(controller.log())")
    }

    @Test func thirtyMegabytesOfOutputKeepTheirHeadAndTailAndLeaveMemoryFlat() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let agents = try startAgents(["chatty-1"], controller: controller)
        defer { agents.forEach { $0.remove() } }
        let before = try #require(controller.residentKilobytes)
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: chatty}
            spec:
              target: {runners: [chatty-1]}
              command: [/bin/sh, -c, "echo START-OF-OUTPUT; head -c 31457280 /dev/zero | tr '\\\\0' x; echo; echo END-OF-OUTPUT"]
              keepOutput: true
            """)
        #expect(
            eventually(timeout: .seconds(120)) { isFinal(phase(controller, "chatty")) },
            "\(String(describing: status(controller, "chatty")))")
        let outcome = result(status(controller, "chatty"), "chatty-1")
        #expect(outcome?["phase"] == "Succeeded", "\(String(describing: outcome))")
        // "START-OF-OUTPUT\n", 30 MiB of x, "\n", "END-OF-OUTPUT\n": every byte counted, the middle dropped.
        #expect(outcome?["outputBytes"] == .int(16 + 31_457_280 + 1 + 14), "\(String(describing: outcome))")
        #expect(outcome?["outputTruncated"] == true)
        let logs = try controller.run("steady", ["logs", "remoterun/chatty", "--runner", "chatty-1"])
        #expect(logs.status == 0)
        #expect(logs.output.hasPrefix("START-OF-OUTPUT"), "\(logs.output.prefix(200))")
        #expect(logs.output.contains("END-OF-OUTPUT"), "\(logs.output.suffix(200))")
        #expect(logs.output.utf8.count < 2 * 1024 * 1024, "\(logs.output.utf8.count) bytes of log kept")
        let after = try #require(controller.residentKilobytes)
        // The controller holds at most the per-runner bound of the output, never the 30 MiB.
        #expect(after - before < 24 * 1024, "controller RSS grew from \(before) KiB to \(after) KiB")
    }
}
