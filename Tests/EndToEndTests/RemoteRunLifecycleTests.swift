import Agent
import AsyncHTTPClient
import Foundation
import Resources
import SteadyTesting
import Testing

/// The life of a RemoteRun on real agents, beyond a plain run: timeouts and cancellation kill the whole process
/// group, batches never overlap, maxErrors stops new starts, a run survives a controller SIGKILL or an agent
/// restart without starting twice, output written while the agent was cut off reaches the controller, an agent
/// reporting on another runner's run loses its stream and nothing else, and a finished run is deleted after its TTL.
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
    func startAgents(
        _ names: [String], controller: ControllerProcess, controllerURLs: String? = nil
    ) throws -> [AgentProcess] {
        let joinToken = try controller.joinToken()
        var agents: [AgentProcess] = []
        for name in names {
            let agent = try AgentProcess(name: name)
            try agent.start(
                controller: controller, joinToken: joinToken, labels: ["role": "work"], allowExec: true,
                controllerURLs: controllerURLs)
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
        // Read once when final: the run is deleted 3 s after it finishes.
        var final: JSONValue?
        #expect(
            eventually(timeout: .seconds(90)) {
                final = status(controller, "survivor")
                return isFinal(final?["phase"]?.stringValue)
            }, "\(String(describing: final))\n\(controller.log())")
        #expect(result(final, "steady-1")?["phase"] == "Succeeded", "\(String(describing: final))")
        #expect(result(final, "steady-1")?["exitCode"] == 0)
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

    /// The agent is stopped (SIGTERM: it stops the run's process group; SIGKILL: the run's outcome is unknown) while
    /// the run goes, and started again: the command started once, and the result the agent kept is recorded once
    /// it reconnects.
    @Test(arguments: [SIGTERM, SIGKILL]) func aRunAcrossAnAgentRestartStartsOnceAndIsRecorded(signal: Int32) throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let agents = try startAgents(["restarted-1"], controller: controller)
        defer { agents.forEach { $0.remove() } }
        let agent = try #require(agents.first)
        let scratch = try TemporaryDirectory(prefix: "steady-run-agent-restart")
        defer { scratch.remove() }
        let starts = scratch.file("starts")
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: across}
            spec:
              target: {runners: [restarted-1]}
              command: [/bin/sh, -c, "echo started >> \(starts.path); sleep 3; exit 0"]
            """)
        #expect(eventually(timeout: .seconds(60)) { FileManager.default.fileExists(atPath: starts.path) })
        #expect(eventually(timeout: .seconds(30)) {
            result(status(controller, "across"), "restarted-1")?["phase"] == "Running"
        })
        agent.stop(signal: signal)
        try agent.start(controller: controller, joinToken: nil, labels: ["role": "work"], allowExec: true)
        #expect(
            eventually(timeout: .seconds(90)) { isFinal(phase(controller, "across")) },
            "\(String(describing: status(controller, "across")))\n\(agent.log())")
        let outcome = result(status(controller, "across"), "restarted-1")
        if signal == SIGKILL {
            // Found `started` in the ledger at the next start: not run again, reported as failed.
            #expect(outcome?["phase"] == "Failed", "\(String(describing: outcome))")
            #expect(outcome?["reason"] == "AgentRestarted", "\(String(describing: outcome))")
        } else {
            #expect(outcome?["phase"] == "Cancelled", "\(String(describing: outcome))")
            #expect(outcome?["reason"] == "AgentStopped", "\(String(describing: outcome))")
        }
        let lines = (try? String(contentsOf: starts, encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(lines.count == 1, "the run started \(lines.count) times")
        #expect(!agent.log().contains("cannot record"), "\(agent.log())")
    }

    @Test func outputWrittenWhileTheAgentIsCutOffReachesTheController() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let proxy = try TCPProxy(targetPort: controller.port)
        defer { proxy.stop() }
        let agents = try startAgents(
            ["cut-off-1"], controller: controller, controllerURLs: "https://127.0.0.1:\(proxy.port)")
        defer { agents.forEach { $0.remove() } }
        let agent = try #require(agents.first)
        let scratch = try TemporaryDirectory(prefix: "steady-run-cut-off")
        defer { scratch.remove() }
        let gate = scratch.file("gate")
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: cut-off}
            spec:
              target: {runners: [cut-off-1]}
              command: [/bin/sh, -c, "echo before-the-cut; while [ ! -e \(gate.path) ]; do sleep 0.05; done; echo while-cut-off"]
              keepOutput: true
            """)
        func logs() -> String {
            (try? controller.run("steady", ["logs", "remoterun/cut-off", "--runner", "cut-off-1"]))?.output ?? ""
        }
        #expect(eventually(timeout: .seconds(60)) { logs().contains("before-the-cut") }, "\(logs())")
        proxy.cut()
        // The agent knows its stream is gone before the command writes again.
        #expect(eventually(timeout: .seconds(30)) { agent.log().contains("slice stream ended") }, "\(agent.log())")
        #expect(FileManager.default.createFile(atPath: gate.path, contents: nil))
        let backlog = agent.stateDirectory.file("run-output").path
        #expect(eventually(timeout: .seconds(30)) {
            ((try? FileManager.default.contentsOfDirectory(atPath: backlog)) ?? []).isEmpty == false
        })
        proxy.heal()
        #expect(
            eventually(timeout: .seconds(90)) { isFinal(phase(controller, "cut-off")) },
            "\(String(describing: status(controller, "cut-off")))\n\(agent.log())")
        #expect(result(status(controller, "cut-off"), "cut-off-1")?["phase"] == "Succeeded")
        #expect(logs() == "before-the-cut\nwhile-cut-off\n", "\(logs())")
        // Sent once: the backlog is gone.
        #expect(eventually { ((try? FileManager.default.contentsOfDirectory(atPath: backlog)) ?? []).isEmpty })
    }

    /// A real agent credential on a stream of its own reports a result for a run dispatched to another runner: its
    /// stream is closed with the reason logged, and the run goes on, recorded from its own runner only.
    @Test func anAgentReportingOnAnotherRunnersRunLosesItsStreamAndNothingElse() async throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let agents = try startAgents(["owner-1", "intruder-1"], controller: controller)
        defer { agents.forEach { $0.remove() } }
        let scratch = try TemporaryDirectory(prefix: "steady-run-intruder")
        defer { scratch.remove() }
        let gate = scratch.file("gate")
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: guarded}
            spec:
              target: {runners: [owner-1]}
              command: [/bin/sh, -c, "while [ ! -e \(gate.path) ]; do sleep 0.05; done; echo owned"]
            """)
        #expect(eventually(timeout: .seconds(60)) {
            result(status(controller, "guarded"), "owner-1")?["phase"] == "Running"
        })
        let object = try controller.run("steady", ["get", "remoterun", "guarded", "-o", "json"])
        let uid = try #require(try JSONValue.parse(Data(object.output.utf8))["metadata"]?["uid"]?.stringValue)

        // The intruder's own agent stops; its credential speaks on a stream of the test's.
        let intruder = agents[1]
        intruder.stop()
        let credential = try String(contentsOf: intruder.stateDirectory.file("credential"), encoding: .utf8)
        let caPEM = try String(contentsOf: intruder.stateDirectory.file("ca.crt"), encoding: .utf8)
        let http = Agent.makeHTTPClient()
        let client = try AgentControllerClient(controllerURL: controller.server, caPEM: caPEM, http: http)
        let forged = RunResult(runUID: uid, phase: .failed, exitCode: 9, completionTime: Timestamp.now())
        let received = try await client.withStream(
            runner: "intruder-1", credential: credential.trimmingCharacters(in: .whitespacesAndNewlines),
            revision: 0, digest: nil
        ) { incoming, reports in
            var chunks = 0
            var isSent = false
            // The controller's first message (the slice) says the stream is up; then the forged result goes, and
            // the controller hangs up.
            for try await _ in incoming {
                chunks += 1
                if !isSent {
                    try await reports.send(run: .result(forged))
                    isSent = true
                }
            }
            return chunks
        }
        try await http.shutdown()
        #expect(received > 0)
        #expect(
            controller.log().contains("an agent reported on a run not dispatched to it; closing its stream"),
            "\(controller.log())")

        // Nothing else is affected: the run goes on and is recorded from its own runner.
        #expect(FileManager.default.createFile(atPath: gate.path, contents: nil))
        #expect(
            eventually(timeout: .seconds(60)) { isFinal(phase(controller, "guarded")) },
            "\(String(describing: status(controller, "guarded")))")
        let final = status(controller, "guarded")
        #expect(final?["phase"] == "Succeeded", "\(String(describing: final))")
        #expect(result(final, "owner-1")?["exitCode"] == 0)
        #expect(result(final, "intruder-1") == nil)
    }
}
