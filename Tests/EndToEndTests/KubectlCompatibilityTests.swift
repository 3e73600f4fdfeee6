import Foundation
import SteadyTesting
import Testing

/// kubectl, unmodified, against a live controller.
@Suite(.serialized, .timeLimit(.minutes(5))) struct KubectlCompatibilityTests {
    static let manifests = Binaries.packageRoot.appendingPathComponent("manifests")

    func withController(_ body: (ControllerProcess) throws -> Void) throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        try body(controller)
    }

    @Test(.enabled(if: Binaries.onPath("kubectl") != nil, "kubectl is not installed: skipped"))
    func kubectlDrivesTheAPI() throws {
        try withController { controller in
            func kubectl(_ arguments: String...) throws -> CommandResult {
                let result = try #require(try controller.kubectl(arguments))
                #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result)")
                return result
            }
            let applied = try kubectl("apply", "-f", Self.manifests.path)
            #expect(applied.output.contains("route.steady.dev/trc-2-mixed created"))
            let again = try kubectl("apply", "-f", Self.manifests.path)
            #expect(again.output.contains("route.steady.dev/trc-2-mixed unchanged"))

            let routes = try kubectl("get", "routes")
            for name in ["controller-only", "runner-only", "trc-2-mixed"] { #expect(routes.output.contains(name)) }
            let yaml = try kubectl("get", "route", "trc-2-mixed", "-o", "yaml")
            #expect(yaml.output.contains("serializeActions: true"))
            #expect(!yaml.output.contains("replace-me-with-a-real-token"))

            let secret = try kubectl("get", "secrets.steady.dev", "ticket-creds", "-o", "json")
            #expect(!secret.output.contains(Data("replace-me-with-a-real-token".utf8).base64EncodedString()))

            let serverSide = try kubectl("apply", "--server-side", "-f", Self.manifests.appendingPathComponent("routes.yaml").path)
            #expect(serverSide.output.contains("route.steady.dev/trc-2-mixed serverside-applied"))

            _ = try kubectl("label", "route", "trc-2-mixed", "tier=critical")
            let labelled = try kubectl("get", "routes", "-l", "tier=critical", "-o", "name")
            #expect(labelled.output.trimmingCharacters(in: .whitespacesAndNewlines) == "route.steady.dev/trc-2-mixed")

            _ = try kubectl("wait", "--for=condition=Ready", "route/trc-2-mixed", "--timeout=30s")

            let deleted = try kubectl("delete", "route", "controller-only")
            #expect(deleted.output.contains("deleted"))
            let missing = try #require(try controller.kubectl(["get", "route", "controller-only"]))
            #expect(missing.status != 0)
            #expect(missing.error.contains("NotFound"))
        }
    }

    /// A `v1 List` file (JSON) of steady.dev/v1 objects, as `kubectl get -o json` writes and tools generate.
    static let listJSON = """
        {
          "apiVersion": "v1",
          "kind": "List",
          "metadata": {},
          "items": [
            {"apiVersion": "steady.dev/v1", "kind": "Action", "metadata": {"name": "listed-action"},
             "spec": {"type": "stdout"}},
            {"apiVersion": "steady.dev/v1", "kind": "Route", "metadata": {"name": "listed-route"},
             "spec": {"input": "input.x == 1", "actions": ["listed-action"]}}
          ]
        }
        """

    @Test(.enabled(if: Binaries.onPath("kubectl") != nil, "kubectl is not installed: skipped"))
    func kubectlAndApplyTakeAV1ListFile() throws {
        try withController { controller in
            let directory = try TemporaryDirectory(prefix: "steady-list")
            defer { directory.remove() }
            try directory.write(Self.listJSON, to: "list.json")
            let file = directory.file("list.json").path

            // kubectl validates a List against /openapi/v2 on the client before applying its items.
            let applied = try #require(try controller.kubectl(["apply", "-f", file]))
            #expect(applied.status == 0, "\(applied)")
            #expect(applied.output.contains("action.steady.dev/listed-action created"))
            #expect(applied.output.contains("route.steady.dev/listed-route created"))
            let again = try #require(try controller.kubectl(["apply", "-f", file]))
            #expect(again.output.contains("route.steady.dev/listed-route unchanged"), "\(again)")
            let serverSide = try #require(try controller.kubectl(["apply", "--server-side", "-f", file]))
            #expect(serverSide.output.contains("route.steady.dev/listed-route serverside-applied"), "\(serverSide)")

            // The project's own apply reads the same file.
            let own = try controller.run("apply", ["-f", file])
            #expect(own.status == 0, "\(own)")
            #expect(own.output.contains("route.steady.dev/listed-route"), "\(own)")
            let listed = try controller.run("steady", ["get", "routes,actions", "-o", "name"])
            #expect(listed.output.contains("route.steady.dev/listed-route"), "\(listed)")
            #expect(listed.output.contains("action.steady.dev/listed-action"), "\(listed)")
        }
    }

    @Test(.enabled(if: Binaries.onPath("kubectl") != nil, "kubectl is not installed: skipped"))
    func kubectlReportsInvalidObjects() throws {
        try withController { controller in
            let bad = """
                apiVersion: steady.dev/v1
                kind: Route
                metadata: {name: bad}
                spec: {actions: [a], serialiseActions: true}
                """
            let result = try #require(try controller.kubectl(["apply", "-f", "-"], input: bad))
            #expect(result.status != 0)
            #expect(result.error.contains("serialiseActions"))
        }
    }
}

/// Acknowledged writes survive a crash of the controller.
@Suite(.serialized, .timeLimit(.minutes(5))) struct DurabilityTests {
    @Test func acknowledgedObjectsSurviveSIGKILL() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        var documents: [String] = []
        for index in 0..<500 {
            documents.append(
                "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: a-\(index)}\nspec: {type: stdout}\n")
        }
        let applied = try controller.run("apply", ["-f", "-"], input: documents.joined(separator: "---\n"))
        #expect(applied.status == 0, "\(applied)")
        #expect(applied.output.split(separator: "\n").filter { $0.hasSuffix(" created") }.count == 500)
        // Killed right after the acknowledgements: nothing acknowledged may be lost.
        controller.stop(signal: SIGKILL)
        try controller.start()
        let listed = try controller.run("steady", ["get", "actions", "-o", "name"])
        let names = Set(listed.output.split(separator: "\n").map(String.init))
        #expect(names.count == 500, "\(listed)")
        #expect(names.contains("action.steady.dev/a-499"))
    }
}
