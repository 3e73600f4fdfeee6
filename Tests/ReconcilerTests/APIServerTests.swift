import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Reconciler
import Resources
import SteadyTesting
import Testing

/// Drives the API router in-process, as kubectl would over the wire.
@Suite struct APIServerTests {
    static let token = "test-admin-token"

    func withAPI(_ body: @Sendable (any TestClientProtocol, StoreFixture) async throws -> Void) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let server = APIServer(
            objects: ObjectService(store: fixture.store), authenticator: AdminTokenAuthenticator(adminToken: Self.token),
            configuration: .init(host: "127.0.0.1", port: 0, tls: nil, watchLimits: .init(maximumSeconds: 2)),
            logger: Logger(label: "test"))
        let app = Application(router: server.makeRouter())
        try await app.test(.router) { client in try await body(client, fixture) }
    }

    static let routesPath = "/apis/steady.dev/v1/routes"

    static func routeJSON(_ name: String, actions: [String] = ["notify"], input: String = "", extra: String = "") -> ByteBuffer {
        let list = actions.map { "\"\($0)\"" }.joined(separator: ",")
        return ByteBuffer(
            string:
                #"{"apiVersion":"steady.dev/v1","kind":"Route","metadata":{"name":"\#(name)","labels":{"tier":"a"}\#(extra)},"spec":{"input":"\#(input)","actions":[\#(list)]}}"#
        )
    }

    func send(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, body: ByteBuffer? = nil,
        contentType: String = "application/json", token: String? = APIServerTests.token
    ) async throws -> (status: Int, body: JSONValue) {
        var headers: HTTPFields = [.contentType: contentType]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
            let text = String(buffer: response.body)
            let value = (try? JSONValue.parse(Data(text.utf8))) ?? .string(text)
            return (Int(response.status.code), value)
        }
    }

    @Test func requestsWithoutTokenAreUnauthorized() async throws {
        try await withAPI { client, _ in
            let missing = try await send(client, .get, Self.routesPath, token: nil)
            #expect(missing.status == 401)
            #expect(missing.body["kind"] == "Status")
            #expect(missing.body["reason"] == "Unauthorized")
            let wrong = try await send(client, .get, Self.routesPath, token: "nope")
            #expect(wrong.status == 401)
            let health = try await send(client, .get, "/healthz", token: nil)
            #expect(health.status == 200)
        }
    }

    @Test func discoveryListsEveryKind() async throws {
        try await withAPI { client, _ in
            let resources = try await send(client, .get, "/apis/steady.dev/v1")
            let names = resources.body["resources"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            for plural in ["runners", "assignments", "routes", "actions", "templates", "secrets", "remoteruns", "gitrepositories", "routes/status"] {
                #expect(names.contains(plural))
            }
            let groups = try await send(client, .get, "/apis")
            #expect(groups.body["groups"]?.arrayValue?.first?["name"] == "steady.dev")
            let openapi = try await send(client, .get, "/openapi/v3/apis/steady.dev/v1")
            #expect(openapi.body["components"]?["schemas"]?["dev.steady.v1.Route"] != nil)
        }
    }

    @Test func createGetListAndConflicts() async throws {
        try await withAPI { client, _ in
            let created = try await send(client, .post, Self.routesPath, body: Self.routeJSON("first"))
            #expect(created.status == 201)
            #expect(created.body["metadata"]?["generation"] == 1)
            #expect(created.body["metadata"]?["uid"]?.stringValue?.isEmpty == false)
            let again = try await send(client, .post, Self.routesPath, body: Self.routeJSON("first"))
            #expect(again.status == 409)
            #expect(again.body["reason"] == "AlreadyExists")
            let fetched = try await send(client, .get, "\(Self.routesPath)/first")
            #expect(fetched.body["spec"]?["actions"] == ["notify"])
            let list = try await send(client, .get, "\(Self.routesPath)?labelSelector=tier%3Da")
            #expect(list.body["kind"] == "RouteList")
            #expect(list.body["items"]?.arrayValue?.count == 1)
            let none = try await send(client, .get, "\(Self.routesPath)?labelSelector=tier%3Db")
            #expect(none.body["items"]?.arrayValue?.count == 0)

            // A PUT with a stale resourceVersion is refused, a fresh one accepted and bumps generation.
            var body = try #require(fetched.body.objectValue)
            body["spec"] = ["actions": ["notify", "page"]]
            let stale = JSONValue.object(body).settingResourceVersion("12345")
            let conflict = try await send(client, .put, "\(Self.routesPath)/first", body: ByteBuffer(bytes: stale.jsonData()))
            #expect(conflict.status == 409)
            #expect(conflict.body["reason"] == "Conflict")
            let updated = try await send(client, .put, "\(Self.routesPath)/first", body: ByteBuffer(bytes: JSONValue.object(body).jsonData()))
            #expect(updated.status == 200)
            #expect(updated.body["metadata"]?["generation"] == 2)
        }
    }

    @Test func invalidObjectsAreRejectedWithCauses() async throws {
        try await withAPI { client, fixture in
            let bad = ByteBuffer(string: #"{"apiVersion":"steady.dev/v1","kind":"Route","metadata":{"name":"r"},"spec":{"actions":["a"],"serialiseActions":true}}"#)
            let response = try await send(client, .post, Self.routesPath, body: bad)
            #expect(response.status == 422)
            #expect(response.body["reason"] == "Invalid")
            let cause = response.body["details"]?["causes"]?.arrayValue?.first
            #expect(cause?["field"] == "spec.serialiseActions")
            #expect(cause?["message"]?.stringValue?.contains("did you mean serializeActions?") == true)
            let expression = try await send(client, .post, Self.routesPath, body: Self.routeJSON("e", input: "input.a =="))
            #expect(expression.status == 422)
            #expect(expression.body["details"]?["causes"]?.arrayValue?.first?["field"] == "spec.input")
            let badName = try await send(client, .post, Self.routesPath, body: Self.routeJSON("Bad_Name"))
            #expect(badName.status == 422)
            let notJSON = try await send(client, .post, Self.routesPath, body: ByteBuffer(string: "{nope"))
            #expect(notJSON.status == 400)
            #expect(try await fixture.store.list(kind: nil).objects.isEmpty)
        }
    }

    @Test func oversizedBodyIs413() async throws {
        try await withAPI { client, _ in
            let huge = ByteBuffer(string: String(repeating: "x", count: 4 * 1024 * 1024))
            let response = try await send(client, .post, Self.routesPath, body: huge)
            #expect(response.status == 413, "\(response.body)")
        }
    }

    @Test func statusSubresourceAndGeneration() async throws {
        try await withAPI { client, _ in
            _ = try await send(client, .post, Self.routesPath, body: Self.routeJSON("s"))
            let patch = ByteBuffer(string: #"{"status":{"observedGeneration":1,"matchedEvents":3}}"#)
            let status = try await send(client, .patch, "\(Self.routesPath)/s/status", body: patch, contentType: "application/merge-patch+json")
            #expect(status.status == 200)
            #expect(status.body["status"]?["matchedEvents"] == 3)
            #expect(status.body["metadata"]?["generation"] == 1)
            // The main resource ignores status; a label change does not bump generation.
            let main = ByteBuffer(string: #"{"metadata":{"labels":{"x":"y"}},"status":{"matchedEvents":99}}"#)
            let patched = try await send(client, .patch, "\(Self.routesPath)/s", body: main, contentType: "application/merge-patch+json")
            #expect(patched.body["status"]?["matchedEvents"] == 3)
            #expect(patched.body["metadata"]?["labels"]?["x"] == "y")
            #expect(patched.body["metadata"]?["generation"] == 1)
        }
    }

    @Test func serverSideApplyConflictsAndForce() async throws {
        try await withAPI { client, _ in
            let first = ByteBuffer(string: "apiVersion: steady.dev/v1\nkind: Route\nmetadata: {name: ssa}\nspec: {actions: [a]}\n")
            let created = try await send(client, .patch, "\(Self.routesPath)/ssa?fieldManager=alice", body: first, contentType: "application/apply-patch+yaml")
            #expect(created.status == 201, "\(created.body)")
            let managers = created.body["metadata"]?["managedFields"]?.arrayValue?.compactMap { $0["manager"]?.stringValue }
            #expect(managers == ["alice"])
            let same = try await send(client, .patch, "\(Self.routesPath)/ssa?fieldManager=alice", body: first, contentType: "application/apply-patch+yaml")
            #expect(same.body["metadata"]?["resourceVersion"] == created.body["metadata"]?["resourceVersion"])
            let other = ByteBuffer(string: "apiVersion: steady.dev/v1\nkind: Route\nmetadata: {name: ssa}\nspec: {actions: [b]}\n")
            let conflict = try await send(client, .patch, "\(Self.routesPath)/ssa?fieldManager=bob", body: other, contentType: "application/apply-patch+yaml")
            #expect(conflict.status == 409)
            #expect(conflict.body["message"]?.stringValue?.contains("conflict with \"alice\": .spec.actions") == true)
            let forced = try await send(client, .patch, "\(Self.routesPath)/ssa?fieldManager=bob&force=true", body: other, contentType: "application/apply-patch+yaml")
            #expect(forced.status == 200)
            #expect(forced.body["spec"]?["actions"] == ["b"])
            #expect(forced.body["metadata"]?["generation"] == 2)
        }
    }

    @Test func dryRunChangesNothing() async throws {
        try await withAPI { client, fixture in
            let response = try await send(client, .post, "\(Self.routesPath)?dryRun=All", body: Self.routeJSON("dry"))
            #expect(response.status == 201)
            #expect(try await fixture.store.get(kind: "Route", name: "dry") == nil)
        }
    }

    @Test func secretsAreRedacted() async throws {
        try await withAPI { client, _ in
            let secret = ByteBuffer(string: #"{"apiVersion":"steady.dev/v1","kind":"Secret","metadata":{"name":"creds"},"stringData":{"token":"hunter2"}}"#)
            let created = try await send(client, .post, "/apis/steady.dev/v1/secrets", body: secret)
            #expect(created.body["data"]?["token"] == "**redacted**")
            let listed = try await send(client, .get, "/apis/steady.dev/v1/secrets")
            #expect(!listed.body.jsonString().contains("aHVudGVyMg"))
            let revealed = try await send(client, .get, "/apis/steady.dev/v1/secrets/creds?reveal=true")
            #expect(revealed.body["data"]?["token"] == "aHVudGVyMg==")
            // Writing back a redacted read keeps the real value.
            var body = created.body
            body["metadata"]?["labels"] = ["a": "b"]
            _ = try await send(client, .put, "/apis/steady.dev/v1/secrets/creds", body: ByteBuffer(bytes: body.jsonData()))
            let after = try await send(client, .get, "/apis/steady.dev/v1/secrets/creds?reveal=true")
            #expect(after.body["data"]?["token"] == "aHVudGVyMg==")
        }
    }

    @Test func deleteAndNotFound() async throws {
        try await withAPI { client, _ in
            _ = try await send(client, .post, Self.routesPath, body: Self.routeJSON("gone"))
            let deleted = try await send(client, .delete, "\(Self.routesPath)/gone")
            #expect(deleted.status == 200)
            let missing = try await send(client, .get, "\(Self.routesPath)/gone")
            #expect(missing.status == 404)
            #expect(missing.body["reason"] == "NotFound")
            #expect(missing.body["message"] == "routes.steady.dev \"gone\" not found")
        }
    }

    @Test func watchFromRevisionAndGone() async throws {
        try await withAPI { client, fixture in
            let created = try await send(client, .post, Self.routesPath, body: Self.routeJSON("w1"))
            let revision = try #require(created.body["metadata"]?["resourceVersion"]?.stringValue)
            _ = try await send(client, .post, Self.routesPath, body: Self.routeJSON("w2"))
            _ = try await send(client, .delete, "\(Self.routesPath)/w1")
            let lines = try await client.execute(
                uri: "\(Self.routesPath)?watch=true&resourceVersion=\(revision)&timeoutSeconds=1", method: .get,
                headers: [.authorization: "Bearer \(Self.token)"]
            ) { response in String(buffer: response.body).split(separator: "\n").map(String.init) }
            let events = lines.compactMap { try? JSONValue.parse(Data($0.utf8)) }
            #expect(events.map { $0["type"]?.stringValue ?? "" } == ["ADDED", "DELETED"])
            #expect(events.map { $0["object"]?["metadata"]?["name"]?.stringValue ?? "" } == ["w2", "w1"])
            _ = try await fixture.store.compact(keepingRevisions: 1)
            let gone = try await send(client, .get, "\(Self.routesPath)?watch=true&resourceVersion=1")
            #expect(gone.status == 410)
        }
    }
}

extension JSONValue {
    func settingResourceVersion(_ version: String) -> JSONValue {
        var copy = self
        copy["metadata"]?["resourceVersion"] = .string(version)
        return copy
    }
}

@Suite struct ServerSideApplyRemovalTests {
    @Test func fieldsDroppedFromTheAppliedConfigurationAreRemoved() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        let options = WriteOptions(fieldManager: "alice")
        let first: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "Assignment", "metadata": ["name": "p"],
            "spec": ["runnerSelector": ["matchLabels": ["role": "web"]], "routes": ["r"]],
        ]
        let created = try await objects.patch(Kinds.assignment, name: "p", patch: .apply(first), subresource: nil, options: options)
        #expect(created.object["metadata"]?["managedFields"]?.arrayValue?.first?["fieldsV1"]?["f:spec"]?["f:runnerSelector"] != nil, "\(created.object)")
        let second: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "Assignment", "metadata": ["name": "p"],
            "spec": ["runners": ["web-2"], "routes": ["r"]],
        ]
        let result = try await objects.patch(Kinds.assignment, name: "p", patch: .apply(second), subresource: nil, options: options)
        #expect(result.object["spec"]?["runnerSelector"] == nil, "\(result.object["spec"] ?? nil)")
        #expect(result.object["spec"]?["runners"] == ["web-2"])
    }
}
