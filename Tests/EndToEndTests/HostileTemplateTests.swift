import Client
import Foundation
import Resources
import SteadyTesting
import Testing

/// A template nesting 600 sections overflowed the stack of the mustache parser: one server-side apply killed the
/// controller with SIGSEGV, and `apply` itself crashed on a 1,000-deep file. Both now answer with an error that
/// names the field and the limit.
@Suite(.serialized, .timeLimit(.minutes(5))) struct HostileTemplateTests {
    static func body(depth: Int) -> String {
        String(repeating: "{{#a}}", count: depth) + "x" + String(repeating: "{{/a}}", count: depth)
    }

    static func template(_ name: String, depth: Int) -> JSONValue {
        [
            "apiVersion": "steady.dev/v1", "kind": "Template", "metadata": ["name": .string(name)],
            "spec": ["type": "mustache", "body": .string(body(depth: depth))],
        ]
    }

    /// Server-side apply straight to the API, as kubectl would send it: no client-side validation on the way.
    static func serverSideApply(_ controller: ControllerProcess, _ object: JSONValue) async throws -> JSONValue {
        let options = try ConnectionOptions.parse(["--kubeconfig", controller.kubeconfig])
        return try await options.withClient { client in
            try await client.apply(Kinds.template, object, fieldManager: "hostile-template-test").object
        }
    }

    @Test func theControllerAnswersADeepTemplateWith422AndStaysUp() async throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()

        do {
            _ = try await Self.serverSideApply(controller, Self.template("deep", depth: 600))
            Issue.record("the controller accepted a template nesting 600 sections")
        } catch let error as APIClientError {
            #expect(error.status == 422, "\(error)")
            #expect(error.reason == "Invalid")
            #expect(
                error.causes.contains(
                    APIClientError.Cause(
                        field: "spec.body", reason: "FieldValueInvalid",
                        message: "sections nest 600 deep; the limit is 16")), "\(error)")
        }

        #expect(controller.isRunning, "\(controller.log())")
        // It still serves: a template at the limit is stored, and the deep one is not.
        let stored = try await Self.serverSideApply(controller, Self.template("at-limit", depth: 16))
        #expect(stored["metadata"]?["name"] == "at-limit")
        let list = try controller.run("steady", ["get", "templates", "-o", "name"])
        #expect(list.status == 0, "\(list)")
        #expect(list.output.split(separator: "\n") == ["template.steady.dev/at-limit"], "\(list)")
    }

    @Test func applyRejectsADeepTemplateFileNamingTheDocumentAndField() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let directory = try TemporaryDirectory(prefix: "steady-hostile")
        defer { directory.remove() }
        let manifest = """
            apiVersion: steady.dev/v1
            kind: Template
            metadata: {name: fine}
            spec: {type: mustache, body: "hello {{input.x}}"}
            ---
            apiVersion: steady.dev/v1
            kind: Template
            metadata: {name: deep}
            spec:
              type: mustache
              body: '\(Self.body(depth: 1000))'

            """
        try directory.write(manifest, to: "templates.yaml")
        let file = directory.file("templates.yaml").path

        let result = try controller.run("apply", ["-f", file])
        #expect(result.status != 0, "\(result)")
        #expect(
            result.error.contains("\(file): document 2 (line 6): spec.body: sections nest 1000 deep; the limit is 16"),
            "\(result)")
        // Nothing was applied: a manifest with an invalid document is refused whole.
        let list = try controller.run("steady", ["get", "templates", "-o", "name"])
        #expect(list.output.isEmpty, "\(list)")
        #expect(controller.isRunning)
    }
}
