import Foundation
import Resources
import SteadyTesting
import Testing

@testable import Client

/// `steady import postee` on a realistic Postee configuration: the files it writes load with the strict manifest
/// loader and validate as `apply --dry-run` validates, and every construct it could not translate is a warning
/// naming its line.
@Suite(.timeLimit(.minutes(5))) struct PosteeImportEndToEndTests {
    static let fixture = Binaries.packageRoot.appendingPathComponent("Tests/Fixtures/postee/cfg.yaml").path

    /// The 1-based line of the first line of the fixture holding `text`.
    func line(of text: String) throws -> Int {
        let lines = try String(contentsOfFile: Self.fixture, encoding: .utf8).components(separatedBy: "\n")
        return try #require(lines.firstIndex { $0.contains(text) }) + 1
    }

    @Test func importsTheSampleConfigurationIntoManifestsThatValidate() throws {
        let directory = try TemporaryDirectory(prefix: "steady-postee")
        defer { directory.remove() }
        let output = directory.file("manifests").path
        let result = try CommandResult.run(Binaries.path("steady"), ["import", "postee", Self.fixture, "-o", output])
        #expect(result.status == 0, "\(result)")
        let names = try FileManager.default.contentsOfDirectory(atPath: output).sorted()
        #expect(names == ["actions.yaml", "routes.yaml", "runners.yaml", "secrets.yaml", "templates.yaml"])
        let mode = try FileManager.default.attributesOfItem(atPath: output + "/secrets.yaml")[.posixPermissions]
        #expect(mode as? Int == 0o600)

        // The strict loader and apply's local validation, as `apply --dry-run -f DIR` runs them.
        var documents: [ManifestDocument] = []
        for name in names {
            let text = try String(contentsOfFile: output + "/" + name, encoding: .utf8)
            documents += try ManifestDocuments.parse(text, file: name)
        }
        let (objects, errors) = Applier.validate(documents)
        #expect(errors.isEmpty, "\(errors)")
        func spec(_ kind: String, _ name: String) -> JSONValue? {
            objects.first { $0.kind == kind && $0.name == name }?.value["spec"]
        }

        #expect(spec("Route", "route1")?["input"] == #"contains(input.image, "alpine")"#)
        #expect(spec("Route", "route1")?["aggregate"] == ["count": 10, "timeout": "1h"])
        #expect(
            spec("Route", "route1")?["dedup"] == [
                "keys": ["input.digest", "input.image", "input.registry", "input.vulnerability_summary.high"],
                "window": "24h",
            ])
        #expect(spec("Route", "route1")?["template"] == nil)
        #expect(
            spec("Route", "critical-vulns")?["input"]?.stringValue
                == #"(input.vulnerability_summary.critical > 0) && "#
                + #"(startswith(input.registry, "ghcr.io") || startswith(input.registry, "quay.io"))"#)
        #expect(spec("Route", "critical-vulns")?["actions"] == ["my-teams", "my-email", "my-pagerduty"])
        #expect(spec("Route", "runner-only-route")?["serializeActions"] == true)
        #expect(
            spec("Route", "controller-runner-route")?["input"]
                == #"input.SigMetadata.ID == "TRC-2" && !(contains(input.Context.processName, "sshd"))"#)
        #expect(
            spec("Route", "controller-runner-route")?["actions"] == ["my-exec-from-runner", "my-http-post-from-runner"])
        #expect(spec("Route", "iterating-route")?["input"] == "false")
        #expect(spec("Route", "rego-files-route")?["input"] == "false")
        #expect(spec("Template", "raw-json")?["type"] == "raw-json")

        #expect(
            spec("Action", "my-slack")?["slack"]?["urlFrom"]?["secretKeyRef"] == [
                "name": "postee-my-slack", "key": "url",
            ])
        #expect(spec("Action", "my-email")?["email"]?["to"] == ["ops@example.com", "security@example.com"])
        #expect(spec("Action", "my-email")?["email"]?["passwordFrom"]?["secretKeyRef"]?["key"] == "password")
        #expect(
            spec("Action", "my-pagerduty")?["pagerduty"]?["routingKeyFrom"]?["secretKeyRef"]?["key"] == "routing-key")
        #expect(spec("Action", "my-exec-from-runner")?["exec"]?["command"]?.arrayValue?.first == "/bin/sh")
        let headers = spec("Action", "my-http-post-from-runner")?["http"]?["headers"]?.arrayValue ?? []
        #expect(headers.contains(["name": "X-Source", "value": "postee, runner"]))
        #expect(spec("Action", "my-webhook")?["timeout"] == "10s")
        #expect(objects.contains { $0.kind == "Runner" && $0.name == "postee-runner-1" })
        #expect(
            spec("Assignment", "postee-runner-1") == [
                "runners": ["postee-runner-1"], "actions": ["my-exec-from-runner", "my-http-post-from-runner"],
                "routes": ["runner-only-route", "controller-runner-route"],
            ])
        let secret = try #require(objects.first { $0.kind == "Secret" && $0.name == "postee-my-email" })
        #expect(secret.value["data"]?["password"] == .string(Data("not-a-real-password".utf8).base64EncodedString()))

        // Every construct left behind is named with its line.
        let warnings = result.error
        let at = Self.fixture
        for expected in [
            "\(at):\(try line(of: "aqua-server")): setting \"aqua-server\": Postee server settings have no",
            "\(at):\(try line(of: "rego-package: postee.vuls.slack") - 1): template \"slack-html\": "
                + "renders with the Rego package postee.vuls.slack",
            "\(at):\(try line(of: "some i") - 1): route \"iterating-route\": "
                + "input cannot be translated (the Rego keyword `some`)",
            "\(at):\(try line(of: "input-files:")): route \"rego-files-route\": "
                + "input-files (Rego files) cannot be translated",
            "\(at):\(try line(of: "type: jira")): action \"my-jira\": steady has no jira action; not imported",
            "route \"controller-runner-route\": action \"my-jira\" is left out: steady has no jira action",
            "action \"my-splunk\": disabled (enable: false); not imported",
            "route \"route1\": template \"slack-html\" was not imported; the route sends the raw event",
            "action \"my-pagerduty\": auth-token is not needed by the Events API v2; not imported",
            "action \"my-exec-from-runner\": the command reads $POSTEE_EVENT",
            "route \"Runner Only Route\": written as Route \"runner-only-route\"",
        ] {
            #expect(warnings.contains("warning: " + expected) || warnings.contains(expected), "missing: \(expected)")
        }
        #expect(warnings.contains("with \(result.error.components(separatedBy: "warning: ").count - 1) warnings"))
    }

    @Test func theWrittenManifestsApplyToARealController() throws {
        let directory = try TemporaryDirectory(prefix: "steady-postee")
        defer { directory.remove() }
        let output = directory.file("manifests").path
        let imported = try CommandResult.run(Binaries.path("steady"), ["import", "postee", Self.fixture, "-o", output])
        #expect(imported.status == 0, "\(imported)")
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let dryRun = try controller.run("apply", ["-f", output, "--dry-run=server"])
        #expect(dryRun.status == 0, "\(dryRun)")
        let applied = try controller.run("apply", ["-f", output])
        #expect(applied.status == 0, "\(applied)")
        let routes = try controller.run("steady", ["get", "routes", "-o", "name"])
        #expect(
            Set(routes.output.split(separator: "\n").map(String.init)) == [
                "route.steady.dev/stdout", "route.steady.dev/route1", "route.steady.dev/critical-vulns",
                "route.steady.dev/runner-only-route", "route.steady.dev/controller-runner-route",
                "route.steady.dev/iterating-route", "route.steady.dev/rego-files-route",
            ])
    }

    @Test func withoutOutputItPrintsOneYAMLStream() throws {
        let result = try CommandResult.run(Binaries.path("steady"), ["import", "postee", Self.fixture])
        #expect(result.status == 0, "\(result)")
        let documents = try ManifestDocuments.parse(result.output, file: "<stdout>")
        #expect(Applier.validate(documents).errors.isEmpty)
        #expect(documents.contains { $0.value["kind"] == "Assignment" })
    }

    @Test func unreadableFileIsAnError() throws {
        let result = try CommandResult.run(Binaries.path("steady"), ["import", "postee", "/nonexistent/cfg.yaml"])
        #expect(result.status == 1)
        #expect(result.error.contains("error: cannot read /nonexistent/cfg.yaml"))
    }
}
