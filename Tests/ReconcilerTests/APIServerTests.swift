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
@Suite(.timeLimit(.minutes(2))) struct APIServerTests {
    static let token = "test-admin-token"

    func withAPI(
        readiness: HealthChecks = HealthChecks(), liveness: HealthChecks = HealthChecks(),
        _ body: @Sendable (any TestClientProtocol, StoreFixture) async throws -> Void
    ) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let server = APIServer(
            objects: ObjectService(store: fixture.store), authenticator: AdminTokenAuthenticator(adminToken: Self.token),
            configuration: .init(host: "127.0.0.1", port: 0, tls: nil, watchLimits: .init(maximumSeconds: 2)),
            readiness: readiness, liveness: liveness, logger: Logger(label: "test"))
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
            let plurals = [
                "runners", "assignments", "routes", "actions", "templates", "secrets", "remoteruns", "gitrepositories",
                "routes/status", "remoteruns/log",
            ]
            for plural in plurals {
                #expect(names.contains(plural))
            }
            let groups = try await send(client, .get, "/apis")
            #expect(groups.body["groups"]?.arrayValue?.first?["name"] == "steady.dev")
            let openapi = try await send(client, .get, "/openapi/v3/apis/steady.dev/v1")
            #expect(openapi.body["components"]?["schemas"]?["dev.steady.v1.Route"] != nil)
        }
    }

    /// kubectl validates a `v1 List` against `/openapi/v2` (as protobuf) and fails when it is missing; then it
    /// maps the List's kind through discovery.
    @Test func whatKubectlNeedsToApplyAV1List() async throws {
        try await withAPI { client, _ in
            let protobuf = try await client.execute(
                uri: "/openapi/v2", method: .get,
                headers: [
                    .authorization: "Bearer \(Self.token)",
                    .accept: "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                ]
            ) { response in (response.status.code, response.headers[.contentType], Array(buffer: response.body)) }
            #expect(protobuf.0 == 200)
            #expect(protobuf.1 == OpenAPI.swaggerProtobufMediaType)
            // Field 1 (swagger), length 3, "2.0": what gnostic's Document decodes to swagger: "2.0".
            #expect(protobuf.2 == [0x0A, 0x03] + Array("2.0".utf8))
            let json = try await send(client, .get, "/openapi/v2")
            #expect(json.status == 200)
            #expect(json.body["swagger"] == "2.0")
            #expect(json.body["definitions"] == [:])
            let anonymous = try await send(client, .get, "/openapi/v2", token: nil)
            #expect(anonymous.status == 401)
            // kubectl maps `kind: List` only in a discovered group version: the core v1, with no resources.
            #expect(try await send(client, .get, "/api").body["versions"] == ["v1"])
            let core = try await send(client, .get, "/api/v1")
            #expect(core.body["groupVersion"] == "v1")
            #expect(core.body["resources"] == [])
        }
    }

    @Test func readyzNamesTheFailingCheck() async throws {
        var readiness = HealthChecks()
        readiness.add("store") {}
        readiness.add("informers") { throw HealthChecks.Failure("the informer has not listed the store yet") }
        try await withAPI(readiness: readiness) { client, _ in
            func probe(_ uri: String) async throws -> (status: Int, text: String) {
                try await client.execute(uri: uri, method: .get) { response in
                    (Int(response.status.code), String(buffer: response.body))
                }
            }
            let ready = try await probe("/readyz")
            #expect(ready.status == 503)
            #expect(ready.text == "[+]ping ok\n[+]store ok\n[-]informers failed: reason withheld\nreadyz check failed\n")
            let verbose = try await probe("/readyz?verbose")
            #expect(verbose.status == 503)
            #expect(verbose.text.contains("[-]informers failed: the informer has not listed the store yet\n"))
            let single = try await probe("/readyz/informers")
            #expect(single.status == 503)
            #expect(try await probe("/readyz/store").status == 200)
            #expect(try await probe("/readyz/nope").status == 404)
            let excluded = try await probe("/readyz?exclude=informers")
            #expect(excluded == (200, "ok"))
            let excludedVerbose = try await probe("/readyz?exclude=informers&verbose")
            #expect(excludedVerbose == (200, "[+]ping ok\n[+]store ok\nreadyz check passed\n"))
            // Liveness has its own checks: the process answers.
            #expect(try await probe("/livez") == (200, "ok"))
            #expect(try await probe("/livez?verbose") == (200, "[+]ping ok\nlivez check passed\n"))
            #expect(try await probe("/healthz").status == 200)
        }
    }

    @Test func malformedBooleanAndIntegerQueryParametersAre400NamingThem() async throws {
        try await withAPI { client, _ in
            let cases: [(uri: String, parameter: String)] = [
                ("\(Self.routesPath)?watch=null", "watch"),
                ("\(Self.routesPath)?watch=yes", "watch"),
                ("\(Self.routesPath)?watch=true&timeoutSeconds=soon", "timeoutSeconds"),
                ("\(Self.routesPath)?watch=true&timeoutSeconds=-1", "timeoutSeconds"),
                ("\(Self.routesPath)?watch=1&allowWatchBookmarks=maybe", "allowWatchBookmarks"),
                ("\(Self.routesPath)?limit=ten", "limit"),
                ("\(Self.routesPath)/r?reveal=please", "reveal"),
            ]
            for (uri, parameter) in cases {
                let response = try await send(client, .get, uri)
                #expect(response.status == 400, "\(uri)")
                #expect(response.body["kind"] == "Status", "\(uri)")
                #expect(response.body["reason"] == "BadRequest", "\(uri)")
                let message = response.body["message"]?.stringValue ?? ""
                #expect(message.contains("query parameter \(parameter)"), "\(uri): \(message)")
            }
            let force = try await send(
                client, .patch, "\(Self.routesPath)/r?fieldManager=a&force=sure", body: Self.routeJSON("r"),
                contentType: "application/apply-patch+yaml")
            #expect(force.status == 400)
            #expect(force.body["message"]?.stringValue?.contains("query parameter force") == true)
            let dryRun = try await send(client, .post, "\(Self.routesPath)?dryRun=Some", body: Self.routeJSON("r"))
            #expect(dryRun.status == 400)
            #expect(dryRun.body["message"]?.stringValue?.contains("query parameter dryRun") == true)
            // What kube accepts: true/false/1/0 in any case, and a bare flag as true.
            #expect(try await send(client, .get, "\(Self.routesPath)?watch=FALSE").body["kind"] == "RouteList")
            #expect(try await send(client, .get, "\(Self.routesPath)?watch=0&limit=500").body["kind"] == "RouteList")
            let bare = try await client.execute(
                uri: "\(Self.routesPath)?watch&timeoutSeconds=0", method: .get,
                headers: [.authorization: "Bearer \(Self.token)"]
            ) { response in response.status.code }
            #expect(bare == 200)
        }
    }

    @Test func everyOperationDocumentsItsErrorAnswersAsStatus() async throws {
        try await withAPI { client, _ in
            let document = try await send(client, .get, "/openapi/v3/apis/steady.dev/v1").body
            let status = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status"
            #expect(document["components"]?["schemas"]?["io.k8s.apimachinery.pkg.apis.meta.v1.Status"]?["type"] == "object")
            let paths = try #require(document["paths"]?.objectValue)
            var operations = 0
            for (path, item) in paths {
                for method in ["get", "post", "put", "patch", "delete"] {
                    guard let operation = item[method] else { continue }
                    operations += 1
                    for code in ["400", "401", "403", "404", "409", "422", "500"] {
                        let reference = operation["responses"]?[code]?["$ref"]?.stringValue
                        #expect(reference == "#/components/responses/Status\(code)", "\(method) \(path) \(code)")
                        let answer = document["components"]?["responses"]?["Status\(code)"]
                        let schema = answer?["content"]?["application/json"]?["schema"]
                        #expect(schema?["$ref"]?.stringValue == status, "\(method) \(path) \(code)")
                    }
                    #expect(operation["responses"]?["200"] != nil, "\(method) \(path)")
                }
            }
            // 8 kinds × (list, create, get, put, patch, delete) + 7 status subresources × (get, put, patch): a
            // status is never deleted on its own.
            #expect(operations == 8 * 6 + 7 * 3)
            let operationIDs = paths.values.flatMap { item in
                ["get", "post", "put", "patch", "delete"].compactMap { item[$0]?["operationId"]?.stringValue }
            }
            #expect(Set(operationIDs).count == operationIDs.count, "operation ids are unique")
        }
    }

    // Found by schemathesis: a path no route serves (DELETE …/status) answered 404 with an empty body and no
    // content type, where every other error is a Status.
    @Test func aPathNoRouteServesIsAStatus() async throws {
        try await withAPI { client, _ in
            for (method, path) in [
                (HTTPRequest.Method.delete, "/apis/steady.dev/v1/routes/r/status"), (.get, "/no/such/path"),
            ] {
                let (code, contentType, body) = try await client.execute(
                    uri: path, method: method, headers: [.authorization: "Bearer \(Self.token)"]
                ) { response in
                    (response.status.code, response.headers[.contentType], String(buffer: response.body))
                }
                #expect(code == 404, "\(method) \(path)")
                #expect(contentType == "application/json", "\(method) \(path)")
                let status = try JSONValue.parse(Data(body.utf8))
                #expect(status["kind"] == "Status" && status["reason"] == "NotFound", "\(method) \(path): \(body)")
            }
        }
    }

    /// The server defines the columns `kubectl get` and `steady get` print.
    @Test func tablesCarryEachKindsColumns() async throws {
        try await withAPI { client, _ in
            func columns(_ plural: String) async throws -> [String] {
                let table = try await client.execute(
                    uri: "/apis/steady.dev/v1/\(plural)", method: .get,
                    headers: [
                        .authorization: "Bearer \(Self.token)", .accept: "application/json;as=Table;v=v1;g=meta.k8s.io",
                    ]
                ) { response in try JSONValue.parse(Data(String(buffer: response.body).utf8)) }
                #expect(table["kind"] == "Table")
                return (table["columnDefinitions"]?.arrayValue ?? []).compactMap { column in
                    column["priority"] == 0 ? column["name"]?.stringValue : nil
                }
            }
            #expect(try await columns("routes") == ["Name", "Ready", "Actions", "Input", "Age"])
            #expect(try await columns("actions") == ["Name", "Ready", "Type", "Age"])
            #expect(try await columns("runners") == ["Name", "Ready", "Connected", "Synced", "Age"])
            #expect(try await columns("remoteruns") == ["Name", "Ready", "Phase", "Succeeded/Total", "Age"])
            #expect(try await columns("assignments") == ["Name", "Ready", "Runners", "Age"])
            #expect(try await columns("templates") == ["Name", "Ready", "Type", "Age"])
            #expect(try await columns("secrets") == ["Name", "Keys", "Age"])
            #expect(try await columns("gitrepositories") == ["Name", "Ready", "URL", "Revision", "Age"])

            _ = try await send(client, .post, Self.routesPath, body: Self.routeJSON("t", actions: ["a", "b"], input: ""))
            let row = try await client.execute(
                uri: "\(Self.routesPath)/t", method: .get,
                headers: [.authorization: "Bearer \(Self.token)", .accept: "application/json;as=Table;v=v1;g=meta.k8s.io"]
            ) { response in try JSONValue.parse(Data(String(buffer: response.body).utf8)) }
            let cells = row["rows"]?.arrayValue?.first?["cells"]?.arrayValue ?? []
            // Name, Ready, Actions, Input (<all> when empty), Age, then the wide Template, Runners, Matched.
            #expect(Array(cells.prefix(4)) == ["t", "", "a,b", "<all>"])
            #expect(Array(cells.suffix(3)) == ["<none>", "<none>", "0"])
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

@Suite(.timeLimit(.minutes(1))) struct ServerSideApplyRemovalTests {
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
