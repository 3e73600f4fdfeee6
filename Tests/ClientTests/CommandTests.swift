import ArgumentParser
import Foundation
import Resources
import SteadyTesting
import Testing

@testable import Client

@Suite(.timeLimit(.minutes(2))) struct CommandTests {
    @Test func kindsResolveByEveryName() throws {
        for text in ["route", "routes", "rt", "Route", "routes.steady.dev", "route.steady.dev"] {
            #expect(try CommandSupport.kind(text).kind == "Route")
        }
    }

    @Test func unknownKindsSuggestTheNearest() {
        #expect(CommandSupport.unknownKind("rout").message == "unknown resource type \"rout\"; did you mean \"route\"?")
        #expect(CommandSupport.unknownKind("runers").message.hasSuffix("did you mean \"runner\"?"))
        #expect(CommandSupport.unknownKind("pods").message.contains("known types: secret, template"))
        #expect(Console.message(for: CommandSupport.unknownKind("rout")).hasPrefix("error: unknown resource type"))
    }

    @Test func referencesAcceptKindSlashNameAndKindName() throws {
        let slashed = try CommandSupport.references(["route/a", "rt/b", "action/c"], allowKindOnly: false)
        #expect(slashed.map(\.info.kind) == ["Route", "Action"])
        #expect(slashed.map(\.names) == [["a", "b"], ["c"]])
        let spaced = try CommandSupport.references(["routes", "a", "b"], allowKindOnly: false)
        #expect(spaced.count == 1 && spaced[0].names == ["a", "b"])
        #expect(try CommandSupport.references(["routes"], allowKindOnly: true)[0].names.isEmpty)
        #expect(throws: ValidationError.self) { try CommandSupport.references(["routes"], allowKindOnly: false) }
        #expect(throws: ValidationError.self) { try CommandSupport.references(["route/a", "b"], allowKindOnly: false) }
        #expect(throws: CommandError.self) { try CommandSupport.references(["rout/a"], allowKindOnly: false) }
    }

    @Test func waitConditionsParse() throws {
        #expect(try WaitCondition.parse("condition=Ready") == .condition(type: "Ready", status: "True"))
        #expect(try WaitCondition.parse("condition=Ready=false") == .condition(type: "Ready", status: "False"))
        #expect(try WaitCondition.parse("condition=Complete=Unknown") == .condition(type: "Complete", status: "Unknown"))
        #expect(try WaitCondition.parse("delete") == .delete)
        #expect(try WaitCondition.parse("converged") == .converged)
        #expect(throws: ValidationError.self) { try WaitCondition.parse("jsonpath={.x}") }
        #expect(throws: ValidationError.self) { try WaitCondition.parse("condition=Ready=maybe") }
        #expect(throws: ValidationError.self) { try WaitCondition.parse("condition=") }
    }

    @Test func waitConditionsIgnoreStaleGenerations() {
        let ready = WaitCondition.condition(type: "Ready", status: "True")
        func object(status: String, observed: Int64, generation: Int64) -> JSONValue {
            [
                "metadata": ["name": "x", "generation": .int(generation)],
                "status": [
                    "conditions": [
                        [
                            "type": "Ready", "status": .string(status), "observedGeneration": .int(observed),
                            "reason": "MissingAction", "message": "action \"y\" does not exist",
                        ]
                    ]
                ],
            ]
        }
        #expect(ready.isMet(object(status: "True", observed: 2, generation: 2)))
        #expect(!ready.isMet(object(status: "True", observed: 1, generation: 2)))
        #expect(!ready.isMet(object(status: "False", observed: 2, generation: 2)))
        #expect(!ready.isMet(nil))
        #expect(WaitCondition.delete.isMet(nil))
        #expect(!WaitCondition.delete.isMet(object(status: "True", observed: 1, generation: 1)))
        #expect(
            ready.describe(object(status: "False", observed: 2, generation: 2))
                == "Ready=False (MissingAction): action \"y\" does not exist")
        #expect(ready.describe(nil) == "not found")
    }

    @Test func durations() throws {
        #expect(try CommandSupport.seconds("30s") == 30)
        #expect(try CommandSupport.seconds("1m30s") == 90)
        #expect(try CommandSupport.seconds("2") == 2)
        #expect(try CommandSupport.seconds("0") == 0)
        #expect(throws: ValidationError.self) { try CommandSupport.seconds("soon") }
    }

    @Test func applyFlagsAreChecked() throws {
        #expect(throws: (any Error).self) { try ApplyCommand.parse([]) }
        #expect(throws: (any Error).self) { try ApplyCommand.parse(["-f", "x", "--prune"]) }
        #expect(throws: (any Error).self) { try ApplyCommand.parse(["-f", "x", "--dry-run=sometimes"]) }
        let command = try ApplyCommand.parse(["-f", "-", "-R", "--dry-run=server", "--prune", "--applyset", "fleet", "-o", "name"])
        #expect(command.manifests.files == ["-"])
        #expect(command.dryRun == .server)
        #expect(command.output == .name)
        #expect(command.fieldManager == "steady")
    }

    @Test func serverFlagAloneNeedsNoKubeconfig() throws {
        let options = try ConnectionOptions.parse(["--server", "https://ctl.example:7443", "--token", "t"])
        let configuration = try options.makeConfiguration(environment: ["HOME": "/nonexistent-home"])
        #expect(configuration.server == "https://ctl.example:7443")
        #expect(configuration.caPEM == nil)  // The system trust store, still verified.
        #expect(configuration.token == "t")
        // A kubeconfig named explicitly must exist.
        let named = try ConnectionOptions.parse(["--kubeconfig", "/nonexistent/config"])
        #expect(throws: KubeconfigError.self) { try named.makeConfiguration(environment: [:]) }
    }

    @Test func aTLSServerNameThatCannotBeHonouredIsRefused() throws {
        let directory = try TemporaryDirectory(prefix: "steady-kubeconfig")
        defer { directory.remove() }
        func kubeconfig(tlsServerName: String) throws -> String {
            let path = directory.file("config-\(tlsServerName)").path
            let text = """
                apiVersion: v1
                kind: Config
                clusters: [{name: c, cluster: {server: "https://127.0.0.1:7443", tls-server-name: \(tlsServerName)}}]
                users: [{name: u, user: {token: t}}]
                contexts: [{name: x, context: {cluster: c, user: u}}]
                current-context: x
                """
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let other = try ConnectionOptions.parse(["--kubeconfig", try kubeconfig(tlsServerName: "ctl.internal")])
        #expect {
            try other.makeConfiguration(environment: [:])
        } throws: { error in
            "\(error)".contains("sets tls-server-name \"ctl.internal\", which this client does not support")
        }
        // Naming the host connected to anyway changes nothing, so it is accepted.
        let same = try ConnectionOptions.parse(["--kubeconfig", try kubeconfig(tlsServerName: "127.0.0.1")])
        #expect(try same.makeConfiguration(environment: [:]).server == "https://127.0.0.1:7443")
    }

    @Test func secretDiffsMarkChangedValuesWithoutShowingThem() {
        let merged: JSONValue = ["data": ["a": "**redacted**", "b": "**redacted**"]]
        let desired: JSONValue = ["data": ["a": "bmV3", "b": "c2FtZQ=="]]
        let revealed: JSONValue = ["data": ["a": "b2xk", "b": "c2FtZQ=="]]
        let marked = DiffCommand.markingChangedValues(in: merged, desired: desired, revealed: revealed)
        #expect(marked == ["data": ["a": "**redacted** (changed)", "b": "**redacted**"]])
        // Without the values (not an admin), nothing can be told.
        #expect(DiffCommand.markingChangedValues(in: merged, desired: desired, revealed: nil) == merged)
    }

    @Test func diffLeavesOutServerFields() {
        let live: JSONValue = [
            "metadata": ["name": "x", "resourceVersion": "3", "generation": 1, "managedFields": [], "uid": "u"],
            "spec": ["actions": ["a"]], "status": ["phase": "x"],
        ]
        var merged = live
        merged["metadata"]?["resourceVersion"] = "4"
        merged["metadata"]?["generation"] = 2
        #expect(DiffCommand.text(live: live, merged: merged, displayName: "route.steady.dev/x") == "")
        merged["spec"]?["actions"] = ["b"]
        let text = DiffCommand.text(live: live, merged: merged, displayName: "route.steady.dev/x")
        #expect(text.hasPrefix("--- live/route.steady.dev/x\n+++ merged/route.steady.dev/x\n"))
        #expect(text.contains("\n-  - a\n+  - b\n"))
    }
}
