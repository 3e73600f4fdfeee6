import Foundation
import SteadyTesting
import Testing

/// A controller and real agent processes on loopback: slices, label changes, restarts, and denials.
@Suite(.serialized, .timeLimit(.minutes(5))) struct AgentEndToEndTests {
    static let configuration = """
        apiVersion: steady.dev/v1
        kind: Secret
        metadata: {name: web-creds}
        stringData: {token: web-only-secret}
        ---
        apiVersion: steady.dev/v1
        kind: Secret
        metadata: {name: controller-creds}
        stringData: {token: controller-only-secret}
        ---
        apiVersion: steady.dev/v1
        kind: Action
        metadata: {name: notify}
        spec:
          type: http
          http:
            url: https://hooks.example/notify
            headers: [{name: Authorization, valueFrom: {secretKeyRef: {name: web-creds, key: token}}}]
        ---
        apiVersion: steady.dev/v1
        kind: Action
        metadata: {name: open-ticket}
        spec:
          type: http
          http:
            url: https://tickets.example
            headers: [{name: Authorization, valueFrom: {secretKeyRef: {name: controller-creds, key: token}}}]
        ---
        apiVersion: steady.dev/v1
        kind: Route
        metadata: {name: mixed}
        spec: {input: 'input.x == 1', actions: [notify, open-ticket]}
        ---
        apiVersion: steady.dev/v1
        kind: Assignment
        metadata: {name: placement}
        spec:
          runnerSelector: {matchLabels: {role: web}}
          routes: [mixed]
          actions: [notify]
        """

    static let webSlice: Set<String> = ["Route/mixed", "Action/notify", "Secret/web-creds"]


    @Test func slicesFollowLabelsAssignmentsAndRestarts() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        try controller.apply(Self.configuration)
        let joinToken = try controller.joinToken()
        let agents = try [("web-1", "web"), ("web-2", "web"), ("db-1", "db")].map { name, role in
            let agent = try AgentProcess(name: name)
            try agent.start(controller: controller, joinToken: joinToken, labels: ["role": role])
            return agent
        }
        defer { agents.forEach { $0.remove() } }
        let (web1, web2, db1) = (agents[0], agents[1], agents[2])

        // Each slice holds exactly what is assigned; the secret only reaches the web runners.
        #expect(eventually(timeout: .seconds(20)) { web1.sliceKeys() == Self.webSlice }, "\(web1.log())\n\(controller.log())")
        #expect(eventually { web2.sliceKeys() == Self.webSlice })
        #expect(eventually { FileManager.default.fileExists(atPath: db1.stateDirectory.file("slice.json").path) })
        #expect(db1.sliceKeys().isEmpty)
        for agent in agents { #expect(!agent.sliceText().contains("controller-only-secret")) }
        #expect(!db1.sliceText().contains(Data("web-only-secret".utf8).base64EncodedString()))
        let ready = try controller.run("steady", ["wait", "--for=condition=Ready", "runner/web-1", "runner/db-1", "--timeout", "20s"])
        #expect(ready.status == 0, "\(ready)")

        // Labels change: the slice follows.
        let relabel = try controller.run("steady", ["get", "runner", "db-1", "-o", "name"])
        #expect(relabel.status == 0)
        try controller.apply("apiVersion: steady.dev/v1\nkind: Runner\nmetadata: {name: db-1, labels: {role: web}}\n")
        #expect(eventually(timeout: .seconds(15)) { db1.sliceKeys() == Self.webSlice }, "\(db1.log())")

        // The assignment changes: runners lose what is no longer theirs.
        try controller.apply("apiVersion: steady.dev/v1\nkind: Assignment\nmetadata: {name: placement}\nspec:\n  runners: [web-2]\n  routes: [mixed]\n  actions: [notify]\n")
        #expect(eventually(timeout: .seconds(15)) { web1.sliceKeys().isEmpty && db1.sliceKeys().isEmpty })
        #expect(web2.sliceKeys() == Self.webSlice)

        // An agent is killed, the configuration changes, it restarts (with its stored credential) and resyncs.
        web2.stop(signal: SIGKILL)
        try controller.apply("apiVersion: steady.dev/v1\nkind: Assignment\nmetadata: {name: placement}\nspec:\n  runners: [web-2]\n  routes: [mixed]\n")
        try web2.start(controller: controller, joinToken: nil)
        #expect(eventually(timeout: .seconds(15)) { web2.sliceKeys() == ["Route/mixed"] }, "\(web2.log())")

        // The controller is killed: agents keep their slice and keep running, reconnect when it is back
        // (same address), and converge on what changed.
        let port = controller.port
        controller.stop(signal: SIGKILL)
        // The agent notices the controller is gone (its first failure is logged as a warning) and keeps running.
        #expect(eventually(timeout: .seconds(20)) { web2.log().contains("slice stream ended") }, "\(web2.log())")
        #expect(web2.isRunning)
        #expect(web2.sliceKeys() == ["Route/mixed"])
        try controller.start(port: port)
        try controller.apply("apiVersion: steady.dev/v1\nkind: Assignment\nmetadata: {name: placement}\nspec:\n  runners: [web-1, web-2]\n  routes: [mixed]\n  actions: [notify]\n")
        #expect(eventually(timeout: .seconds(20)) { web1.sliceKeys() == Self.webSlice && web2.sliceKeys() == Self.webSlice })
    }

    @Test func agentCredentialsAreConfinedToTheirRunner() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        try controller.apply(Self.configuration)
        let agent = try AgentProcess(name: "edge-1")
        defer { agent.remove() }
        try agent.start(controller: controller, joinToken: try controller.joinToken())
        let credentialFile = agent.stateDirectory.file("credential").path
        #expect(eventually(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: credentialFile) }, "\(agent.log())")
        let attributes = try FileManager.default.attributesOfItem(atPath: credentialFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let credential = try String(contentsOfFile: credentialFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        for arguments in [["get", "secrets"], ["get", "runner", "web-1"], ["get", "routes"], ["delete", "runner", "edge-1"]] {
            let result = try controller.run("steady", arguments + ["--token", credential])
            #expect(result.status != 0)
            #expect(result.error.contains("Forbidden"), "\(arguments): \(result)")
        }
        let own = try controller.run("steady", ["get", "runner", "edge-1", "--token", credential])
        #expect(own.status == 0, "\(own)")
    }

    @Test func badJoinTokensAreRefused() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let good = try controller.joinToken()
        let wrongHash = "sha256:" + String(repeating: "0", count: 64) + "::" + good.components(separatedBy: "::")[1]
        for (token, expected) in [(wrongHash, "does not match"), ("garbage", "token"), (good.components(separatedBy: "::")[0] + "::abcdef.0123456789abcdef", "unknown or revoked")] {
            let agent = try AgentProcess(name: "bad-1")
            defer { agent.remove() }
            try agent.start(controller: controller, joinToken: token)
            #expect(eventually(timeout: .seconds(15)) { !agent.isRunning })
            #expect(agent.exitStatus != 0)
            #expect(agent.log().contains(expected), "\(agent.log())")
        }
        let runners = try controller.run("steady", ["get", "runners", "-o", "name"])
        #expect(!runners.output.contains("bad-1"))
    }
}
