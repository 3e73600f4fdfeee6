import Foundation
import SteadyTesting
import Testing

/// `apply --wait` and `steady wait --for=converged` against a real controller and agents: the example
/// manifests converge, and a timeout names each laggard and why.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ConvergenceEndToEndTests {
    static let manifests = Binaries.packageRoot.appendingPathComponent("manifests")

    func joinToken(_ controller: ControllerProcess) throws -> String {
        let result = try controller.run("steady", ["token", "create", "--ttl", "1h"])
        guard result.status == 0 else { throw ControllerProcessError(message: "token create: \(result)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Every object of every kind with a status, with its Ready condition's status ("" when it has none).
    func readiness(_ controller: ControllerProcess) throws -> [String: String] {
        var states: [String: String] = [:]
        for kind in ["templates", "actions", "routes", "runners", "assignments", "remoteruns"] {
            let listed = try controller.run("steady", ["get", kind, "-o", "json"])
            let object = try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [String: Any]
            for item in object?["items"] as? [[String: Any]] ?? [] {
                let name = (item["metadata"] as? [String: Any])?["name"] as? String ?? "?"
                let conditions = (item["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
                let ready = conditions.first { $0["type"] as? String == "Ready" }
                states["\(kind)/\(name)"] = ready?["status"] as? String ?? ""
            }
        }
        return states
    }

    @Test func theExampleManifestsConvergeWithTheirRunners() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let token = try joinToken(controller)
        // web-1 runs the exec action the examples place on it, so its operator allowed exec.
        let web = try AgentProcess(name: "web-1")
        let db = try AgentProcess(name: "db-1")
        defer { [web, db].forEach { $0.remove() } }
        try web.start(controller: controller, joinToken: token, allowExec: true)
        try db.start(controller: controller, joinToken: token)

        let applied = try controller.run("apply", ["-f", Self.manifests.path, "--wait", "--timeout", "60s"])
        #expect(applied.status == 0, "\(applied)\n\(controller.log())")
        #expect(applied.output.contains("route.steady.dev/trc-2-mixed created"))
        #expect(applied.error.contains("converged in"), "\(applied)")
        #expect(applied.error.contains("2 runners synced"), "\(applied)")

        let states = try readiness(controller)
        #expect(states.count == 13, "\(states)")  // everything but the Secret
        #expect(states.values.allSatisfy { $0 == "True" }, "\(states)")
        #expect(web.sliceKeys().contains("Action/kill-process"))

        let waited = try controller.run("steady", ["wait", "--for=converged", "-f", Self.manifests.path, "--timeout", "30s"])
        #expect(waited.status == 0, "\(waited)")
    }

    @Test func aTimeoutNamesEveryLaggardAndWhy() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let plain = try AgentProcess(name: "plain-1")
        defer { plain.remove() }
        try plain.start(controller: controller, joinToken: try joinToken(controller))
        #expect(eventually { (try? controller.run("steady", ["get", "runner", "plain-1"]).status) == 0 })

        let manifest = """
            apiVersion: steady.dev/v1
            kind: Runner
            metadata: {name: ghost-1}
            ---
            apiVersion: steady.dev/v1
            kind: Action
            metadata: {name: restart-sensor}
            spec: {type: exec, exec: {command: [/bin/true]}}
            ---
            apiVersion: steady.dev/v1
            kind: Assignment
            metadata: {name: sensors}
            spec: {runners: [ghost-1, plain-1], actions: [restart-sensor]}
            """
        let applied = try controller.run("apply", ["-f", "-", "--wait", "--timeout", "3s"], input: manifest)
        #expect(applied.status == 1, "\(applied)")
        #expect(applied.output.contains("action.steady.dev/restart-sensor created"))
        #expect(applied.error.contains("error: timed out after"), "\(applied)")
        #expect(applied.error.contains("runner/ghost-1: NeverConnected"), "\(applied)")
        #expect(applied.error.contains("runner/plain-1: ExecNotAllowed"), "\(applied)")
        #expect(applied.error.contains("restart-sensor"), "\(applied)")

        // A runner no agent has joined as says so in its own status.
        let ghost = try controller.run("steady", ["wait", "--for=condition=Ready=false", "runner/ghost-1", "--timeout", "10s"])
        #expect(ghost.status == 0, "\(ghost)")
        let described = try controller.run("steady", ["get", "runner", "ghost-1", "-o", "yaml"])
        #expect(described.output.contains("reason: NeverConnected"), "\(described)")
        #expect(described.output.contains("steady agent --name ghost-1"), "\(described)")

        let waited = try controller.run("steady", ["wait", "--for=converged", "action/restart-sensor", "--timeout", "1s"])
        #expect(waited.status == 1)
        #expect(waited.error.contains("runner/plain-1: ExecNotAllowed"), "\(waited)")

        // Waiting for a condition of an object that does not exist fails at once, as kubectl does.
        let missing = try controller.run("steady", ["wait", "--for=condition=Ready", "route/nope", "--timeout", "10m"])
        #expect(missing.status == 1)
        #expect(missing.error.contains("NotFound"), "\(missing)")
    }
}
