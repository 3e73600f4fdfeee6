import Testing

@testable import Resources

/// The email and pagerduty action types: strict decoding, validation and their schema.
@Suite(.timeLimit(.minutes(5))) struct ActionKindTests {
    func errors(_ spec: String) throws -> [String] {
        let yaml = "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: a}\nspec:\n" + spec
        let documents = try ManifestDocuments.parse(yaml, file: "actions.yaml")
        // Several errors of one document come as one, a line each.
        return ManifestValidation.objects(from: documents).errors.flatMap { error in
            ((error.fieldPath.map { "\($0): " } ?? "") + error.message).components(separatedBy: "\n  ")
        }
    }

    func spec(_ spec: String) throws -> ActionSpec {
        let yaml = "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: a}\nspec:\n" + spec
        let result = ManifestValidation.objects(from: try ManifestDocuments.parse(yaml, file: "actions.yaml"))
        #expect(result.errors.isEmpty, "\(result.errors)")
        let object = try #require(result.objects.first)
        return try StrictDecoder().decode(Action.self, from: object.value).spec
    }

    let validEmail = """
          type: email
          email:
            host: smtp.example.com
            port: 587
            from: alerts@example.com
            to: [ops@example.com, sec@example.com]
            subject: "{{input.image}} has findings"
            usernameFrom: {secretKeyRef: {name: smtp, key: user}}
            passwordFrom: {secretKeyRef: {name: smtp, key: password}}
          timeout: 20s
        """

    @Test func emailDecodesAndNamesItsSecrets() throws {
        let action = try spec(validEmail)
        #expect(action.email?.host == "smtp.example.com")
        #expect(action.email?.to == ["ops@example.com", "sec@example.com"])
        #expect(action.email?.startTLS == nil)
        #expect(action.timeout?.seconds == 20)
        #expect(
            Set(action.secretReferences)
                == [SecretKeySelector(name: "smtp", key: "user"), SecretKeySelector(name: "smtp", key: "password")])
    }

    @Test func emailUnknownFieldSuggestsTheNearest() throws {
        let yaml = validEmail.replacingOccurrences(of: "port: 587", with: "startTls: required")
        #expect(try errors(yaml) == ["spec.email.startTls: unknown field; did you mean startTLS?"])
    }

    @Test func emailStartTLSPolicyIsAnEnum() throws {
        let yaml = validEmail.replacingOccurrences(of: "port: 587", with: "startTLS: sometimes")
        let all = try errors(yaml).joined(separator: "\n")
        #expect(all.contains("spec.email.startTLS: unsupported value \"sometimes\""))
    }

    @Test func emailAddressesAndPortAreChecked() throws {
        let yaml = validEmail.replacingOccurrences(of: "port: 587", with: "port: 70000")
            .replacingOccurrences(of: "from: alerts@example.com", with: "from: \"Alerts <alerts@example.com>\"")
            .replacingOccurrences(of: "sec@example.com", with: "\"sec@example.com\\r\\nBcc: x@y\"")
        let all = try errors(yaml)
        #expect(all.contains("spec.email.port: must be between 1 and 65535"))
        #expect(all.contains("spec.email.from: must be one address like alerts@example.com"))
        #expect(all.contains("spec.email.to[1]: must be one address like ops@example.com"))
    }

    @Test func emailNeedsRecipients() throws {
        let yaml = validEmail.replacingOccurrences(of: "to: [ops@example.com, sec@example.com]", with: "to: []")
        #expect(try errors(yaml) == ["spec.email.to: at least one recipient is required"])
    }

    @Test func emailPasswordIsNeverSentWithoutTLS() throws {
        for policy in ["opportunistic", "disabled"] {
            let yaml = validEmail.replacingOccurrences(of: "port: 587", with: "startTLS: \(policy)")
            #expect(
                try errors(yaml) == [
                    "spec.email.startTLS: must be required when a password is sent, "
                        + "so that it never crosses in clear text"
                ])
        }
        let withoutCredentials = validEmail.replacingOccurrences(of: "port: 587", with: "startTLS: disabled")
            .replacingOccurrences(of: "    usernameFrom: {secretKeyRef: {name: smtp, key: user}}\n", with: "")
            .replacingOccurrences(of: "    passwordFrom: {secretKeyRef: {name: smtp, key: password}}\n", with: "")
        #expect(try errors(withoutCredentials).isEmpty)
    }

    @Test func emailUserAndPasswordComeTogether() throws {
        let noPassword = validEmail.replacingOccurrences(
            of: "    passwordFrom: {secretKeyRef: {name: smtp, key: password}}\n", with: "")
        #expect(try errors(noPassword) == ["spec.email.passwordFrom: required with a user name"])
        let noUser = validEmail.replacingOccurrences(
            of: "    usernameFrom: {secretKeyRef: {name: smtp, key: user}}\n", with: "")
        #expect(try errors(noUser) == ["spec.email.username: required with passwordFrom"])
        let both = validEmail.replacingOccurrences(of: "port: 587", with: "username: alerts")
        #expect(try errors(both) == ["spec.email.usernameFrom: set username or usernameFrom, not both"])
    }

    @Test func emailBlockMustMatchType() throws {
        let all = try errors("  type: email\n  pagerduty: {routingKeyFrom: {secretKeyRef: {name: pd, key: k}}}\n")
        #expect(all.contains("spec.email: required when type is email"))
        #expect(all.contains("spec.pagerduty: must not be set when type is email"))
    }

    @Test func pagerDutyDecodesAndNamesItsSecret() throws {
        let action = try spec(
            """
              type: pagerduty
              pagerduty:
                routingKeyFrom: {secretKeyRef: {name: pagerduty, key: routing-key}}
                severity: critical
                source: web-1
                url: http://127.0.0.1:9000/v2/enqueue
            """)
        #expect(action.pagerduty?.severity == .critical)
        #expect(action.secretReferences == [SecretKeySelector(name: "pagerduty", key: "routing-key")])
    }

    @Test func pagerDutyRoutingKeyComesFromASecret() throws {
        #expect(
            try errors("  type: pagerduty\n  pagerduty: {severity: info}\n")
                == ["spec.pagerduty.routingKeyFrom: required field is missing"])
        let inline = try errors(
            "  type: pagerduty\n  pagerduty: {routingKey: abc, routingKeyFrom: {secretKeyRef: {name: pd, key: k}}}\n")
        #expect(inline == ["spec.pagerduty.routingKey: unknown field"])
    }

    @Test func pagerDutyFieldsAreChecked() throws {
        let all = try errors(
            """
              type: pagerduty
              pagerduty:
                routingKeyFrom: {secretKeyRef: {name: Bad_Name, key: ""}}
                severity: fatal
                url: ftp://example.com
            """
        ).joined(separator: "\n")
        #expect(all.contains("spec.pagerduty.severity: unsupported value \"fatal\""))
        let valueErrors = try errors(
            """
              type: pagerduty
              pagerduty:
                routingKeyFrom: {secretKeyRef: {name: Bad_Name, key: ""}}
                url: ftp://example.com
                source: ""
            """)
        #expect(valueErrors.contains("spec.pagerduty.routingKeyFrom.secretKeyRef.key: key is required"))
        #expect(valueErrors.contains { $0.hasPrefix("spec.pagerduty.routingKeyFrom.secretKeyRef.name: invalid name") })
        #expect(valueErrors.contains("spec.pagerduty.url: must be an http:// or https:// URL"))
        #expect(valueErrors.contains("spec.pagerduty.source: must be 1 to 255 bytes long"))
    }

    @Test func schemaDocumentsTheNewFields() throws {
        let spec = try #require(Kinds.action.schema.property("spec")?.schema)
        #expect(spec.property("type")?.schema.allowedValues?.contains("pagerduty") == true)
        let email = try #require(spec.property("email"))
        #expect(email.schema.description?.contains("SMTP") == true)
        #expect(email.schema.property("host")?.isRequired == true)
        #expect(email.schema.property("startTLS")?.schema.allowedValues == ["required", "opportunistic", "disabled"])
        #expect(email.schema.property("passwordFrom")?.schema.description?.contains("Secret") == true)
        let pagerduty = try #require(spec.property("pagerduty"))
        #expect(pagerduty.schema.property("routingKeyFrom")?.isRequired == true)
        #expect(
            pagerduty.schema.property("severity")?.schema.allowedValues == ["critical", "error", "warning", "info"])
        let document = OpenAPI.groupVersionDocument()
        let action = try #require(document["components"]?["schemas"]?["dev.steady.v1.Action"])
        #expect(action["properties"]?["spec"]?["properties"]?["email"]?["properties"]?["to"]?["type"] == "array")
    }
}
