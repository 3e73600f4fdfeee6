import Foundation
import Resources
import Testing

@testable import Client

/// Rego inputs translated to expressions, and Postee configurations to manifests that validate.
@Suite(.timeLimit(.minutes(5))) struct RegoTranslatorTests {
    @Test(arguments: [
        (#"contains(input.image, "alpine")"#, #"contains(input.image, "alpine")"#),
        (#"input.SigMetadata.ID == "TRC-2""#, #"input.SigMetadata.ID == "TRC-2""#),
        (
            #"startswith(input.registry, "ghcr.io") or endswith(input.image, ":latest")"#,
            #"startswith(input.registry, "ghcr.io") || endswith(input.image, ":latest")"#
        ),
        (#"input.a == 1 and input.b != "x""#, #"input.a == 1 && input.b != "x""#),
        (
            "input.vulnerability_summary.critical > 0\ninput.vulnerability_summary.high >= 2",
            "(input.vulnerability_summary.critical > 0) && (input.vulnerability_summary.high >= 2)"
        ),
        (
            #"not contains(input.image, "test"); input.x["a b"] == true"#,
            #"(!(contains(input.image, "test"))) && (input.x["a b"] == true)"#
        ),
        ("regex.match(`^ghcr\\.io/`, input.registry) # only GitHub", #"regex.match(r"^ghcr\.io/", input.registry)"#),
        (#"contains(input.note, "a and b; or not")"#, #"contains(input.note, "a and b; or not")"#),
        ("  \n# nothing but a comment\n", ""),
        (
            #"input.id == "TRC-2" and not contains(input.p, "sshd") or input.x"#,
            #"input.id == "TRC-2" && !(contains(input.p, "sshd")) || input.x"#
        ),
        (#"not (input.a == 1 || input.b == 2) && input.c"#, #"!((input.a == 1 || input.b == 2)) && input.c"#),
    ])
    func translates(rego: String, expected: String) throws {
        #expect(try RegoTranslator.translate(rego) == expected)
    }

    @Test(arguments: [
        ("some i\ninput.vulnerabilities[i].severity == \"CRITICAL\"", "the Rego keyword `some`"),
        ("input.vulnerabilities[_].severity == \"CRITICAL\"", "iteration with `_` (use exists() in the expression)"),
        ("x := input.image", "Rego assignments, sets and comprehensions (`:`)"),
        ("input.image = \"alpine\"", "Rego unification with a single `=`; use `==`"),
        ("contains(input.image, \"alpine)", "a string is not closed"),
    ])
    func refuses(rego: String, reason: String) {
        #expect(throws: RegoTranslator.Failure(reason: reason)) { try RegoTranslator.translate(rego) }
    }

    @Test func functionsTheExpressionLanguageLacksAreRefusedWithTheCompilerError() {
        let error = #expect(throws: RegoTranslator.Failure.self) {
            try RegoTranslator.translate(#"sprintf("%s", [input.image]) == "x""#)
        }
        #expect(error?.reason.hasPrefix("the translation sprintf(") == true)
    }
}

@Suite(.timeLimit(.minutes(5))) struct PosteeImporterTests {
    func translate(_ yaml: String) throws -> PosteeImport {
        try PosteeImporter.translate(yaml, file: "cfg.yaml")
    }

    func object(_ result: PosteeImport, _ kind: String, _ name: String) -> JSONValue? {
        result.objects.first { $0["kind"]?.stringValue == kind && $0["metadata"]?["name"]?.stringValue == name }
    }

    func validationErrors(_ result: PosteeImport) -> [String] {
        let documents = result.objects.enumerated().map { index, object in
            ManifestDocument(file: "out.yaml", index: index + 1, line: 1, value: object)
        }
        return Applier.validate(documents).errors.map(\.description)
    }

    @Test func untranslatableInputIsKeptInertAndReported() throws {
        let result = try translate(
            """
            routes:
            - name: r
              input: |
                some i
                input.v[i] == 1
              actions: [out]
            actions:
            - name: out
              type: stdout
            """)
        let route = try #require(object(result, "Route", "r"))
        #expect(route["spec"]?["input"] == "false")
        #expect(
            route["metadata"]?["annotations"]?[PosteeImporter.untranslatedInputAnnotation]
                == "some i\ninput.v[i] == 1\n")
        #expect(
            result.warnings.map(\.description) == [
                "cfg.yaml:3: route \"r\": input cannot be translated (the Rego keyword `some`); the route is written "
                    + "with input \"false\", matching nothing, and the Rego kept in the annotation "
                    + "import.steady.dev/postee-input"
            ])
        #expect(validationErrors(result).isEmpty)
    }

    @Test func unsupportedAndDisabledActionsAreReportedWhereRoutesUseThem() throws {
        let result = try translate(
            """
            routes:
            - name: r
              actions: [ticket, off, out, missing]
            actions:
            - name: ticket
              type: jira
            - name: off
              type: stdout
              enable: false
            - name: out
              type: stdout
              colour: blue
            """)
        #expect(object(result, "Route", "r")?["spec"]?["actions"] == ["out"])
        let warnings = result.warnings.map(\.description)
        #expect(warnings.contains("cfg.yaml:6: action \"ticket\": steady has no jira action; not imported"))
        #expect(warnings.contains("cfg.yaml:7: action \"off\": disabled (enable: false); not imported"))
        #expect(
            warnings.contains("cfg.yaml:12: action \"out\": field \"colour\" has no steady equivalent; not imported"))
        #expect(warnings.contains("cfg.yaml:3: route \"r\": action \"ticket\" is left out: steady has no jira action"))
        #expect(
            warnings.contains(
                "cfg.yaml:3: route \"r\": action \"missing\" is not defined in the configuration; left out"))
        #expect(validationErrors(result).isEmpty)
    }

    @Test func routeWithoutAnyImportedActionIsReported() throws {
        let result = try translate("routes:\n- name: r\n  actions: [ticket]\nactions:\n- {name: ticket, type: jira}\n")
        #expect(object(result, "Route", "r") == nil)
        #expect(
            result.warnings.map(\.description).contains(
                "cfg.yaml:2: route \"r\": no action of this route could be imported, so neither is the route"))
    }

    @Test func namesAreMadeValidAndUnique() throws {
        let result = try translate(
            "routes:\n- {name: My Route, actions: [A_1]}\n- {name: my-route, actions: [A_1]}\n"
                + "actions:\n- {name: A_1, type: stdout}\n")
        #expect(object(result, "Route", "my-route") != nil)
        #expect(object(result, "Route", "my-route-2") != nil)
        #expect(object(result, "Route", "my-route")?["spec"]?["actions"] == ["a-1"])
        #expect(validationErrors(result).isEmpty)
    }

    @Test func notAPosteeConfiguration() {
        #expect(throws: PosteeImporter.Failure.self) { try translate("- just\n- a list\n") }
        #expect(throws: PosteeImporter.Failure.self) { try translate("routes: [\n") }
    }
}
