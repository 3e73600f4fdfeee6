import Testing

@testable import Resources

@Suite(.timeLimit(.minutes(5))) struct ManifestValidationTests {
    func errors(_ yaml: String, file: String = "routes.yaml") throws -> [String] {
        let documents = try ManifestDocuments.parse(yaml, file: file)
        return ManifestValidation.objects(from: documents).errors.map(\.description)
    }

    func firstError(_ yaml: String) throws -> String {
        try #require(try errors(yaml).first)
    }

    let validRoute = """
        apiVersion: steady.dev/v1
        kind: Route
        metadata: {name: trc-2-mixed}
        spec:
          input: 'input.SigMetadata.ID == "TRC-2"'
          actions: [kill-process, open-ticket]
          template: raw-json
          serializeActions: true
        """

    @Test func validRouteDecodes() throws {
        let documents = try ManifestDocuments.parse(validRoute, file: "routes.yaml")
        let result = ManifestValidation.objects(from: documents)
        #expect(result.errors.isEmpty)
        let object = try #require(result.objects.first)
        #expect(object.displayName == "route.steady.dev/trc-2-mixed")
        #expect(object.value["spec"]?["serializeActions"] == true)
    }

    @Test func misspeltFieldSuggestsTheNearestOne() throws {
        let yaml = """
            apiVersion: steady.dev/v1
            kind: Template
            metadata: {name: raw-json}
            spec: {type: raw-json}
            ---
            apiVersion: steady.dev/v1
            kind: Route
            metadata: {name: r}
            spec:
              actions: [a]
              serialiseActions: true
            """
        #expect(
            try firstError(yaml)
                == "routes.yaml: document 2 (line 6): spec.serialiseActions: unknown field; did you mean serializeActions?")
    }

    @Test func wrongTypeNamesThePath() throws {
        let yaml = validRoute.replacingOccurrences(of: "serializeActions: true", with: "serializeActions: [1]")
        #expect(try firstError(yaml) == "routes.yaml: document 1 (line 1): spec.serializeActions: expected boolean, got array")
    }

    @Test func missingRequiredField() throws {
        let yaml = "apiVersion: steady.dev/v1\nkind: Route\nmetadata: {name: r}\nspec: {input: ''}\n"
        #expect(try firstError(yaml) == "routes.yaml: document 1 (line 1): spec.actions: required field is missing")
    }

    @Test func invalidNameExplainsTheRule() throws {
        let yaml = validRoute.replacingOccurrences(of: "name: trc-2-mixed", with: "name: Bad_Name")
        #expect(try firstError(yaml).hasPrefix("routes.yaml: document 1 (line 1): metadata.name: invalid name \"Bad_Name\""))
    }

    @Test func unknownKindSuggests() throws {
        let yaml = validRoute.replacingOccurrences(of: "kind: Route", with: "kind: Rout")
        #expect(try firstError(yaml) == "routes.yaml: document 1 (line 1): kind: unknown kind \"Rout\"; did you mean Route?")
    }

    @Test func unknownAPIVersion() throws {
        let yaml = validRoute.replacingOccurrences(of: "steady.dev/v1", with: "steady.dev/v2")
        #expect(
            try firstError(yaml)
                == "routes.yaml: document 1 (line 1): apiVersion: unsupported apiVersion \"steady.dev/v2\" for kind Route: use steady.dev/v1"
        )
    }

    @Test func invalidRemoteRunCondition() throws {
        let yaml = """
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: now}
            spec:
              target: {all: true}
              conditions: [force_inventory, "rm -rf"]
            """
        #expect(
            try firstError(yaml)
                == "routes.yaml: document 1 (line 1): spec.conditions[1]: invalid condition \"rm -rf\": must match ^[A-Za-z0-9][A-Za-z0-9_]*$"
        )
    }

    @Test func enumValueSuggests() throws {
        let yaml = "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: a}\nspec: {type: stdot}\n"
        #expect(try firstError(yaml).contains("spec.type: unsupported value \"stdot\""))
        #expect(try firstError(yaml).hasSuffix("did you mean stdout?"))
    }

    @Test func invalidDuration() throws {
        let yaml = "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: a}\nspec: {type: stdout, timeout: 5x}\n"
        #expect(try firstError(yaml).contains("spec.timeout: invalid duration \"5x\""))
    }

    @Test func duplicateObjectInOneApply() throws {
        let yaml = validRoute + "\n---\n" + validRoute
        #expect(try firstError(yaml).contains("duplicate object Route \"trc-2-mixed\": already declared in routes.yaml document 1"))
    }

    @Test func actionBlockMustMatchType() throws {
        let yaml = """
            apiVersion: steady.dev/v1
            kind: Action
            metadata: {name: a}
            spec: {type: http, file: {path: /tmp/x}}
            """
        let all = try errors(yaml).joined(separator: "\n")
        #expect(all.contains("spec.http: required when type is http"))
        #expect(all.contains("spec.file: must not be set when type is http"))
    }

    @Test func secretStringDataIsFolded() throws {
        let yaml = "apiVersion: steady.dev/v1\nkind: Secret\nmetadata: {name: s}\nstringData: {token: abc}\n"
        let object = try #require(ManifestValidation.objects(from: try ManifestDocuments.parse(yaml, file: "s.yaml")).objects.first)
        #expect(object.value["data"]?["token"] == "YWJj")
        #expect(object.value["stringData"] == nil)
    }

    @Test func runnerNeedsNoSpec() throws {
        let yaml = "apiVersion: steady.dev/v1\nkind: Runner\nmetadata: {name: web-1, labels: {role: web}}\n"
        #expect(try errors(yaml).isEmpty)
    }

    @Test func namespaceIsIgnored() throws {
        let yaml = validRoute.replacingOccurrences(of: "{name: trc-2-mixed}", with: "{name: trc-2-mixed, namespace: default}")
        let object = try #require(ManifestValidation.objects(from: try ManifestDocuments.parse(yaml, file: "r.yaml")).objects.first)
        #expect(object.value["metadata"]?["namespace"] == nil)
    }
}

@Suite(.timeLimit(.minutes(5))) struct SchemaTests {
    @Test func routeSchemaIsRecordedFromTheType() throws {
        let schema = Kinds.route.schema
        let spec = try #require(schema.property("spec"))
        #expect(spec.isRequired)
        #expect(spec.schema.property("actions")?.isRequired == true)
        #expect(spec.schema.property("input")?.isRequired == false)
        #expect(spec.schema.property("serializeActions")?.schema.shape == .boolean)
        #expect(spec.schema.property("dedup")?.schema.property("window")?.schema.pattern != nil)
        #expect(schema.property("metadata")?.schema.property("labels")?.schema.shape == .map)
    }

    @Test func enumsAndOpenAPI() throws {
        let document = OpenAPI.groupVersionDocument()
        let action = try #require(document["components"]?["schemas"]?["dev.steady.v1.Action"])
        #expect(action["properties"]?["spec"]?["properties"]?["type"]?["enum"]?.arrayValue?.contains("exec") == true)
        #expect(action["x-kubernetes-group-version-kind"]?.arrayValue?.first?["kind"] == "Action")
        let remoteRun = try #require(document["components"]?["schemas"]?["dev.steady.v1.RemoteRun"])
        #expect(remoteRun["properties"]?["spec"]?["properties"]?["batchSize"]?["x-kubernetes-int-or-string"] == true)
        #expect(document["paths"]?["/apis/steady.dev/v1/routes/{name}/status"] != nil)
    }
}

@Suite(.timeLimit(.minutes(5))) struct LabelSelectorTests {
    @Test func parsesAndMatches() throws {
        let query = try LabelQuery.parse("role=web,site in (paris, lyon),!legacy,tier!=db")
        #expect(query.matches(["role": "web", "site": "paris"]))
        #expect(!query.matches(["role": "web", "site": "berlin"]))
        #expect(!query.matches(["role": "web", "site": "paris", "legacy": "1"]))
        #expect(!query.matches(["role": "web", "site": "paris", "tier": "db"]))
    }

    @Test func rejectsBadTerms() {
        #expect(throws: FieldError.self) { try LabelQuery.parse("role in paris") }
        #expect(throws: FieldError.self) { try LabelQuery.parse("bad key=1") }
    }

    @Test func selectorExpressions() {
        let selector = LabelSelector(
            matchLabels: ["role": "web"], matchExpressions: [.init(key: "site", operator: .notIn, values: ["x"])])
        #expect(selector.matches(["role": "web"]))
        #expect(!selector.matches(["role": "web", "site": "x"]))
        #expect(LabelSelector().matches([:]))
    }
}
