import Foundation
import Resources
import SteadyTesting
import Testing

/// RemoteRuns carried out by real agents: each runner's own run command, exit codes, refusals, and the status a
/// user reads.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RemoteRunEndToEndTests: RemoteRunReading {
    @Test func agentsRunTheirOwnCommandAndReportEachExitStatus() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let joinToken = try controller.joinToken()
        let good = try AgentProcess(name: "web-1")
        let bad = try AgentProcess(name: "web-2")
        defer {
            good.remove()
            bad.remove()
        }
        // The run command is the operator's, split into words: no shell runs the string itself.
        try good.start(
            controller: controller, joinToken: joinToken, labels: ["role": "web"],
            runCommand: #"/bin/sh -c "echo ran $STEADY_RUN_NAME on $STEADY_RUNNER with $STEADY_RUN_CONDITIONS""#)
        try bad.start(
            controller: controller, joinToken: joinToken, labels: ["role": "web"], runCommand: "/bin/sh -c 'exit 3'")
        #expect(eventually(timeout: .seconds(30)) {
            (try? controller.run("steady", ["get", "runners", "-o", "name"]).output.contains("web-2")) == true
        })
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: inventory}
            spec:
              target: {runnerSelector: {matchLabels: {role: web}}}
              conditions: [force_inventory]
              keepOutput: true
            """)
        #expect(
            eventually(timeout: .seconds(60)) {
                ["Succeeded", "Failed"].contains(status(controller, "inventory")?["phase"]?.stringValue ?? "")
            }, "\(String(describing: status(controller, "inventory")))\n\(controller.log())")
        let final = status(controller, "inventory")
        #expect(final?["phase"] == "Failed")
        #expect(result(final, "web-1")?["phase"] == "Succeeded")
        #expect(result(final, "web-1")?["exitCode"] == 0)
        #expect(result(final, "web-2")?["phase"] == "Failed")
        #expect(result(final, "web-2")?["exitCode"] == 3)
        #expect(final?["counts"]?["succeeded"] == 1)
        let failed = final?["conditions"]?.arrayValue?.first { $0["type"] == "Failed" }
        #expect(failed?["status"] == "True")
        #expect(failed?["reason"] == "RunnersFailed")
        // "ran inventory on web-1 with force_inventory\n": 44 bytes, counted by the agent.
        #expect(result(final, "web-1")?["outputBytes"] == 44)

        // The output is kept outside the object and read through the log subresource.
        let logs = try controller.run("steady", ["logs", "remoterun/inventory", "--runner", "web-1"])
        #expect(logs.status == 0, "\(logs)")
        #expect(logs.output.contains("ran inventory on web-1 with force_inventory"), "\(logs)")

        // `steady run` streams each runner's output and exits 0 only when every runner succeeded.
        let one = try controller.run("steady", ["run", "--name", "now", "--runners", "web-1", "--keep-output"])
        #expect(one.status == 0, "\(one)")
        #expect(one.output.contains("ran now on web-1"), "\(one)")
        let both = try controller.run("steady", ["run", "--name", "both", "-l", "role=web"])
        #expect(both.status != 0, "\(both)")

        // An explicit command runs only where the operator allowed exec: elsewhere nothing runs.
        try controller.apply("""
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: shell}
            spec:
              target: {runners: [web-1]}
              command: [/bin/touch, \(good.stateDirectory.path)/should-not-exist]
            """)
        #expect(
            eventually(timeout: .seconds(60)) { status(controller, "shell")?["phase"]?.stringValue == "Failed" },
            "\(String(describing: status(controller, "shell")))")
        let refused = result(status(controller, "shell"), "web-1")
        #expect(refused?["phase"] == "Refused")
        #expect(refused?["reason"] == "ExecNotAllowed")
        #expect(!FileManager.default.fileExists(atPath: good.stateDirectory.file("should-not-exist").path))
    }
}
