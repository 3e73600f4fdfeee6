import Foundation
import Resources
import Testing

@testable import Client

@Suite(.timeLimit(.minutes(2))) struct ApplierUnitTests {
    @Test func applySetIDIsTheURLSafeHashOfNameKindAndGroup() {
        // printf 'fleet.Secret.steady.dev' | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '='
        #expect(ApplySet.id(forParent: "fleet") == "applyset-2FZZWydUE__6mgpKnLJSbDYhYvQ6R9-jSedp_71gCyI-v1")
        #expect(ApplySet.id(forParent: "other") != ApplySet.id(forParent: "fleet"))
        // Short enough to be a label value.
        #expect(ApplySet.id(forParent: "fleet").count <= 63)
    }

    @Test func groupKindsRoundTrip() {
        let text = ApplySet.groupKinds(["Route", "Action"])
        #expect(text == "Action.steady.dev,Route.steady.dev")
        #expect(ApplySet.kinds(inGroupKinds: text) == ["Route", "Action"])
        // Other groups and unknown kinds are never pruned.
        #expect(ApplySet.kinds(inGroupKinds: "Deployment.apps, Nope.steady.dev,Secret.steady.dev") == ["Secret"])
    }

    static func object(version: String, spec: JSONValue = ["actions": ["a"]]) -> JSONValue {
        ["metadata": ["name": "x", "resourceVersion": .string(version)], "spec": spec]
    }

    @Test func outcomesFromListedAndReturnedObjects() {
        let live = Self.object(version: "5")
        // Not listed: created, whatever the server said.
        #expect(Applier.classify(live: nil, returned: Self.object(version: "6"), created: false, dryRun: .none) == .created)
        // The server created it (someone deleted it after the list).
        #expect(Applier.classify(live: live, returned: Self.object(version: "9"), created: true, dryRun: .none) == .created)
        #expect(Applier.classify(live: live, returned: Self.object(version: "5"), created: false, dryRun: .none) == .unchanged)
        #expect(Applier.classify(live: live, returned: Self.object(version: "6"), created: false, dryRun: .none) == .configured)
        // A server dry run keeps the version: the content decides.
        let changed = Self.object(version: "5", spec: ["actions": ["b"]])
        #expect(Applier.classify(live: live, returned: changed, created: false, dryRun: .server) == .configured)
        #expect(Applier.classify(live: live, returned: live, created: false, dryRun: .server) == .unchanged)
    }

    @Test func clientDryRunComparesOnlyWhatTheManifestSets() {
        let live: JSONValue = [
            "metadata": ["name": "x", "uid": "u", "resourceVersion": "3"],
            "spec": ["actions": ["a"], "serializeActions": true],
            "data": ["token": "**redacted**"],
        ]
        #expect(Applier.classifyLocally(desired: ["metadata": ["name": "x"], "spec": ["actions": ["a"]]], live: live) == .unchanged)
        #expect(Applier.classifyLocally(desired: ["spec": ["actions": ["b"]]], live: live) == .configured)
        #expect(Applier.classifyLocally(desired: ["spec": ["template": "t"]], live: live) == .configured)
        #expect(Applier.classifyLocally(desired: ["data": ["token": "c2VjcmV0"]], live: live) == .unchanged)
        #expect(Applier.classifyLocally(desired: ["spec": [:]], live: nil) == .created)
    }

    @Test func resultLinesAreKubectls() {
        var result = Applier.Result(info: Kinds.route, name: "trc-2-mixed")
        result.outcome = .created
        #expect(result.line(dryRun: .none) == "route.steady.dev/trc-2-mixed created")
        #expect(result.line(dryRun: .client) == "route.steady.dev/trc-2-mixed created (dry run)")
        #expect(result.line(dryRun: .server) == "route.steady.dev/trc-2-mixed created (server dry run)")
        result.outcome = nil
        #expect(result.line(dryRun: .none) == nil)
    }

    @Test func validationReportsEveryErrorWithFileDocumentLineAndField() throws {
        let text = """
            apiVersion: steady.dev/v1
            kind: Route
            metadata: {name: good}
            spec: {actions: [a]}
            ---
            apiVersion: steady.dev/v1
            kind: Route
            metadata: {name: Bad_Name}
            spec: {actions: [a]}
            ---
            apiVersion: steady.dev/v1
            kind: Rout
            metadata: {name: x}
            ---
            apiVersion: steady.dev/v1
            kind: Route
            metadata: {name: expr}
            spec: {actions: [a], input: 'input.a =='}
            ---
            apiVersion: steady.dev/v1
            kind: Route
            metadata: {name: good}
            spec: {actions: [b]}
            ---
            apiVersion: steady.dev/v1
            kind: Route
            metadata: {name: typo}
            spec: {actions: [a], serialiseActions: true}
            """
        let documents = try ManifestDocuments.parse(text, file: "m.yaml")
        let (objects, errors) = Applier.validate(documents)
        #expect(objects.isEmpty)
        let lines = errors.map(\.description)
        #expect(lines.contains { $0.hasPrefix("m.yaml: document 2 (line 6): metadata.name: ") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("m.yaml: document 6 (line 25): spec.serialiseActions: unknown field") })
        #expect(lines.contains { $0.hasPrefix("m.yaml: document 3 (line 11): kind: ") && $0.contains("did you mean Route?") })
        #expect(lines.contains { $0.hasPrefix("m.yaml: document 4 (line 15): spec.input: invalid expression") })
        #expect(lines.contains { $0.hasPrefix("m.yaml: document 5 (line 20): metadata.name: duplicate object") })
        // One error per line.
        #expect(lines.allSatisfy { !$0.contains("\n") })
    }

    @Test func appliedConfigurationLeavesOutStatusAndServerFields() {
        let value: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "Route",
            "metadata": ["name": "x", "uid": "u", "resourceVersion": "3", "generation": 2, "labels": ["a": "b"]],
            "spec": ["actions": ["a"]], "status": ["conditions": []],
        ]
        let body = Applier.appliedConfiguration(value)
        #expect(body["status"] == nil)
        #expect(body["metadata"] == ["name": "x", "labels": ["a": "b"]])
    }
}
