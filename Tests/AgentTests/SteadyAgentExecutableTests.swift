import Foundation
import SteadyTesting
import Testing

/// `steady-agent`, the executable that holds only the agent, as a real process against a real controller.
@Suite(.timeLimit(.minutes(5))) struct SteadyAgentExecutableTests {
    static let configuration = """
        apiVersion: steady.dev/v1
        kind: Action
        metadata: {name: notify}
        spec: {type: stdout}
        ---
        apiVersion: steady.dev/v1
        kind: Route
        metadata: {name: alerts}
        spec: {input: 'input.x == 1', actions: [notify]}
        ---
        apiVersion: steady.dev/v1
        kind: Assignment
        metadata: {name: web}
        spec:
          runnerSelector: {matchLabels: {role: web}}
          routes: [alerts]
          actions: [notify]
        """

    @Test func enrolsAndHoldsItsSliceAsSteadyAgentDoes() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let applied = try controller.run("apply", ["-f", "-"], input: Self.configuration)
        #expect(applied.status == 0, "\(applied)")
        let token = try controller.run("steady", ["token", "create", "--ttl", "1h"])
        #expect(token.status == 0, "\(token)")
        let agent = try AgentProcess(name: "web-1", program: .steadyAgent)
        defer { agent.remove() }
        try agent.start(
            controller: controller, joinToken: token.output.trimmingCharacters(in: .whitespacesAndNewlines),
            labels: ["role": "web"])
        let holdsSlice = eventually(timeout: .seconds(30)) {
            agent.sliceKeys() == ["Route/alerts", "Action/notify"]
        }
        #expect(holdsSlice, "\(agent.log())\n\(controller.log())")
        #expect(agent.isRunning)
    }

    @Test func refusesAnUnknownLogLevelNamingTheFlag() throws {
        let result = try CommandResult.run(
            Binaries.path("steady-agent"),
            ["--controller", "https://127.0.0.1:1", "--name", "web-1", "--log-level", "loud"])
        #expect(result.status != 0)
        #expect(result.error.contains("--log-level"), "\(result)")
        #expect(result.error.contains("loud"), "\(result)")
    }
}
