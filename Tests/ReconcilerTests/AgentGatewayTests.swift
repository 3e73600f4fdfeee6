import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Reconciler
import Resources
import SteadyTesting
import Testing

/// Slices hold exactly what each runner is responsible for; agents are confined to their own runner.
@Suite(.timeLimit(.minutes(5))) struct AgentGatewayTests {
    static let admin = WriteOptions(fieldManager: "test")

    static func object(_ yaml: String) throws -> (KindInfo, JSONValue) {
        let document = try #require(try ManifestDocuments.parse(yaml, file: "test.yaml").first)
        let info = try ManifestValidation.kindInfo(of: document.value)
        return (info, document.value)
    }

    static let fleet = """
        apiVersion: steady.dev/v1
        kind: Runner
        metadata: {name: web-1, labels: {role: web}}
        ---
        apiVersion: steady.dev/v1
        kind: Runner
        metadata: {name: web-2, labels: {role: web}}
        ---
        apiVersion: steady.dev/v1
        kind: Runner
        metadata: {name: db-1, labels: {role: db}}
        ---
        apiVersion: steady.dev/v1
        kind: Secret
        metadata: {name: web-creds}
        stringData: {token: web-secret-value}
        ---
        apiVersion: steady.dev/v1
        kind: Secret
        metadata: {name: controller-creds}
        stringData: {token: controller-secret-value}
        ---
        apiVersion: steady.dev/v1
        kind: Template
        metadata: {name: raw-json}
        spec: {type: raw-json}
        ---
        apiVersion: steady.dev/v1
        kind: Action
        metadata: {name: notify-web}
        spec:
          type: http
          http:
            url: https://hooks.example/web
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
        spec: {input: 'input.x == 1', actions: [notify-web, open-ticket], template: raw-json}
        ---
        apiVersion: steady.dev/v1
        kind: Assignment
        metadata: {name: web}
        spec:
          runnerSelector: {matchLabels: {role: web}}
          routes: [mixed]
          actions: [notify-web]
        """

    struct Harness {
        let fixture: StoreFixture
        let objects: ObjectService
        let gateway: AgentGateway
        let credentials: AgentCredentials
    }

    func withGateway(_ body: @Sendable (Harness) async throws -> Void) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        let credentials = AgentCredentials(store: fixture.store, adminToken: "admin-token")
        let gateway = AgentGateway(
            objects: objects, credentials: credentials,
            configuration: .init(heartbeatTimeout: .seconds(2), batchInterval: .milliseconds(2)), logger: Logger(label: "test"))
        for document in try ManifestDocuments.parse(Self.fleet, file: "fleet.yaml") {
            let info = try ManifestValidation.kindInfo(of: document.value)
            _ = try await objects.create(info, body: document.value, options: Self.admin)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await gateway.run() }
            try await body(Harness(fixture: fixture, objects: objects, gateway: gateway, credentials: credentials))
            group.cancelAll()
        }
    }

    /// The first message of a fresh connection, once the gateway has caught up with the store.
    func snapshot(_ gateway: AgentGateway, _ runner: String, until condition: (SliceMessage) -> Bool = { _ in true })
        async throws -> SliceMessage
    {
        for _ in 0..<200 {
            var iterator = await gateway.connect(runner: runner, revision: 0, digest: nil).makeAsyncIterator()
            if let message = await iterator.next(), condition(message) { return message }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CancellationError()
    }

    @Test func slicesHoldOnlyWhatIsAssigned() async throws {
        try await withGateway { harness in
            let web = try await snapshot(harness.gateway, "web-1") { ($0.objects ?? []).count > 0 }
            let keys = Set((web.objects ?? []).map(\.key.description))
            #expect(keys == ["Route/mixed", "Action/notify-web", "Template/raw-json", "Secret/web-creds"])
            // The runner gets the real value of the one secret it needs, and never the controller's.
            let text = JSONValue.array((web.objects ?? []).map(\.object)).jsonString()
            #expect(text.contains(Data("web-secret-value".utf8).base64EncodedString()))
            #expect(!text.contains(Data("controller-secret-value".utf8).base64EncodedString()))
            #expect(web.digest == SliceDigest.digest(of: web.objects ?? []))

            let database = try await snapshot(harness.gateway, "db-1")
            #expect((database.objects ?? []).isEmpty)
        }
    }

    @Test func labelChangesMoveSlicesAsDiffs() async throws {
        try await withGateway { harness in
            _ = try await snapshot(harness.gateway, "web-1") { ($0.objects ?? []).count > 0 }
            let first = try await snapshot(harness.gateway, "db-1")
            var stream = await harness.gateway.connect(runner: "db-1", revision: first.revision, digest: first.digest)
                .makeAsyncIterator()
            #expect(await stream.next()?.type == .keepalive)
            _ = try await harness.objects.patch(
                Kinds.runner, name: "db-1", patch: .merge(["metadata": ["labels": ["role": "web"]]]), subresource: nil,
                options: Self.admin)
            var diff: SliceMessage?
            while let message = await stream.next() {
                if message.type == .diff { diff = message; break }
            }
            let received = try #require(diff)
            #expect(received.baseRevision == first.revision)
            #expect(Set((received.objects ?? []).map(\.key.description)).contains("Secret/web-creds"))
        }
    }

    // MARK: HTTP: enrolment and authorization

    func withRouter(
        _ harness: Harness, _ body: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let server = APIServer(
            objects: harness.objects, authenticator: harness.credentials,
            configuration: .init(host: "127.0.0.1", port: 0, tls: nil), agents: harness.gateway,
            caCertificatePEM: "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n", logger: Logger(label: "test"))
        try await Application(router: server.makeRouter()).test(.router, body)
    }

    func call(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, token: String?, body: JSONValue? = nil,
        contentType: String = "application/json"
    ) async throws -> (status: Int, body: JSONValue) {
        var headers: HTTPFields = [.contentType: contentType]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(
            uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0.jsonData()) }
        ) { response in
            (Int(response.status.code), (try? JSONValue.parse(Data(buffer: response.body))) ?? .string(String(buffer: response.body)))
        }
    }

    func joinToken(_ harness: Harness, ttl: Duration? = .seconds(3600)) async throws -> String {
        let token = JoinToken.make(ttl: ttl, description: "test")
        _ = try await harness.objects.create(Kinds.secret, body: token.object, options: Self.admin)
        return "\(token.id).\(token.secret)"
    }

    @Test func enrolmentTurnsATokenIntoACredential() async throws {
        try await withGateway { harness in
            let token = try await joinToken(harness)
            try await withRouter(harness) { client in
                let ca = try await client.execute(uri: "/steady/v1/ca", method: .get) { String(buffer: $0.body) }
                #expect(ca.contains("BEGIN CERTIFICATE"))
                let request = try JSONValue(encoding: EnrollmentRequest(name: "edge-1", labels: ["role": "edge"]))
                let enrolled = try await call(client, .post, "/steady/v1/enroll", token: token, body: request)
                #expect(enrolled.status == 200, "\(enrolled.body)")
                let credential = try #require(enrolled.body["credential"]?.stringValue)
                // Enrolment created the Runner with the agent's labels.
                let runner = try await harness.objects.get(Kinds.runner, name: "edge-1")
                #expect(runner["metadata"]?["labels"]?["role"] == "edge")

                // An agent reads its own Runner and writes its status, and nothing else.
                #expect(try await call(client, .get, "/apis/steady.dev/v1/runners/edge-1", token: credential).status == 200)
                let status = try await call(
                    client, .patch, "/apis/steady.dev/v1/runners/edge-1/status", token: credential,
                    body: ["status": ["hostname": "edge-host"]], contentType: "application/merge-patch+json")
                #expect(status.status == 200, "\(status.body)")
                for (method, uri) in [
                    (HTTPRequest.Method.get, "/apis/steady.dev/v1/runners/web-1"),
                    (.get, "/apis/steady.dev/v1/secrets"), (.get, "/apis/steady.dev/v1/secrets/web-creds"),
                    (.get, "/apis/steady.dev/v1/routes"), (.delete, "/apis/steady.dev/v1/runners/edge-1"),
                    (.post, ConvergenceRequest.path),
                    // Only an admin starts remote runs: an agent's credential cannot make its fleet run anything.
                    (.post, "/apis/steady.dev/v1/remoteruns"), (.get, "/apis/steady.dev/v1/remoteruns"),
                    (.delete, "/apis/steady.dev/v1/remoteruns/inventory"),
                ] {
                    let denied = try await call(client, method, uri, token: credential, body: method == .post ? ["synced": true] : nil)
                    #expect(denied.status == 403, "\(method) \(uri): \(denied.body)")
                }
                let patchSpec = try await call(
                    client, .patch, "/apis/steady.dev/v1/runners/edge-1", token: credential,
                    body: ["metadata": ["labels": ["role": "web"]]], contentType: "application/merge-patch+json")
                #expect(patchSpec.status == 403)

                // Reports become Runner status (they come up the agent stream: AgentStreamTests).
                await harness.gateway.report(runner: "edge-1", AgentReport(hostname: "edge-host", agentVersion: "test", synced: true))
                let connected = try await harness.objects.get(Kinds.runner, name: "edge-1")
                let conditions = connected["status"]?["conditions"]?.arrayValue ?? []
                #expect(conditions.contains { $0["type"] == "Connected" && $0["status"] == "True" })

                // The name is now held by a live agent.
                let again = try await call(client, .post, "/steady/v1/enroll", token: token, body: request)
                #expect(again.status == 409)
            }
        }
    }

    @Test func badJoinTokensEnrolNothing() async throws {
        try await withGateway { harness in
            let expired = try await joinToken(harness, ttl: .seconds(-10))
            let valid = try await joinToken(harness)
            try await withRouter(harness) { client in
                let request = try JSONValue(encoding: EnrollmentRequest(name: "edge-2"))
                let revoked = "zzzzzz.0123456789abcdef"
                for (token, expected) in [
                    (expired, "expired"), (revoked, "unknown or revoked"), ("nonsense", "malformed"),
                    // Another last character (a fixed one would equal the real one now and then).
                    (String(valid.dropLast()) + (valid.hasSuffix("x") ? "y" : "x"), "invalid join token"),
                ] {
                    let response = try await call(client, .post, "/steady/v1/enroll", token: token, body: request)
                    #expect(response.status == 401, "\(expected): \(token)")
                    #expect(response.body["message"]?.stringValue?.contains(expected) == true, "\(response.body)")
                }
                let badName = try await call(
                    client, .post, "/steady/v1/enroll", token: valid, body: try JSONValue(encoding: EnrollmentRequest(name: "Bad_Name")))
                #expect(badName.status == 422)
                await #expect(throws: APIError.self) { try await harness.objects.get(Kinds.runner, name: "edge-2") }
            }
        }
    }
}
