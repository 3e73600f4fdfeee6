import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
@testable import Reconciler
import Resources
import SteadyTesting
import Testing

/// `/metrics` carries what an operator watches first, in valid Prometheus text.
@Suite(.timeLimit(.minutes(2))) struct MetricsTests {
    static let token = "metrics-token"

    static func scrape(_ client: any TestClientProtocol) async throws -> PrometheusText {
        let text = try await client.execute(
            uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(token)"]
        ) { response in
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; version=0.0.4")
            return String(buffer: response.body)
        }
        return try PrometheusText(text)
    }

    static func runner(_ name: String, connected: String?, synced: String?) -> JSONValue {
        var conditions: [JSONValue] = []
        if let connected { conditions.append(["type": "Connected", "status": .string(connected)]) }
        if let synced { conditions.append(["type": "Synced", "status": .string(synced)]) }
        return [
            "apiVersion": "steady.dev/v1", "kind": "Runner", "metadata": ["name": .string(name)],
            "status": ["conditions": .array(conditions)],
        ]
    }

    @Test func gatewayQueueAndRequestMetricsAfterActivity() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let metrics = APIMetrics()
        let objects = ObjectService(store: fixture.store)
        let manager = ControllerManager(objects: objects, metrics: metrics, logger: Logger(label: "test"))
        let runners = [
            Self.runner("a", connected: "True", synced: "True"),
            Self.runner("b", connected: "False", synced: nil),
            Self.runner("c", connected: "True", synced: "False"),
        ]
        metrics.addCollector { manager.collectQueueDepths() }
        metrics.addCollector { metrics.gateway.setRunnerConditions(of: runners) }
        let server = APIServer(
            objects: objects, authenticator: AdminTokenAuthenticator(adminToken: Self.token), metrics: metrics,
            configuration: .init(host: "127.0.0.1", port: 0, tls: nil), logger: Logger(label: "test"))

        // What the gateway reports: three agents came, one left; two pushes; one failed status write.
        metrics.gateway.runnerConnected()
        metrics.gateway.runnerConnected()
        metrics.gateway.runnerConnected()
        metrics.gateway.runnerDisconnected()
        metrics.gateway.slicePushed(bytes: 1200)
        metrics.gateway.slicePushed(bytes: 34)
        metrics.gateway.statusWriteFailed()
        // Work waiting: two Routes and an Action.
        manager.queue.add(ObjectKey(kind: "Route", name: "r1"))
        manager.queue.add(ObjectKey(kind: "Route", name: "r2"))
        manager.queue.add(ObjectKey(kind: "Action", name: "a1"))

        try await Application(router: server.makeRouter()).test(.router) { client in
            let route = ByteBuffer(
                string: #"{"apiVersion":"steady.dev/v1","kind":"Route","metadata":{"name":"m"},"spec":{"actions":["a"]}}"#)
            try await client.execute(
                uri: "/apis/steady.dev/v1/routes", method: .post,
                headers: [.authorization: "Bearer \(Self.token)", .contentType: "application/json"], body: route
            ) { response in #expect(response.status == .created) }
            let scraped = try await Self.scrape(client)

            #expect(scraped.families["steady_gateway_connected_runners"]?.type == "gauge")
            #expect(scraped.value("steady_gateway_connected_runners") == 2)
            #expect(scraped.families["steady_gateway_slice_pushes_total"]?.type == "counter")
            #expect(scraped.value("steady_gateway_slice_pushes_total") == 2)
            #expect(scraped.value("steady_gateway_slice_pushed_bytes_total") == 1234)
            #expect(scraped.value("steady_gateway_status_write_failures_total") == 1)

            let family = try #require(scraped.families["steady_runners"])
            #expect(family.type == "gauge")
            #expect(family.samples.count == 9)
            #expect(Set(family.samples.map { Set($0.labels.keys) }) == [["condition", "status"]])
            #expect(scraped.value("steady_runners", ["condition": "Connected", "status": "True"]) == 2)
            #expect(scraped.value("steady_runners", ["condition": "Connected", "status": "False"]) == 1)
            #expect(scraped.value("steady_runners", ["condition": "Synced", "status": "True"]) == 1)
            #expect(scraped.value("steady_runners", ["condition": "Synced", "status": "False"]) == 1)
            #expect(scraped.value("steady_runners", ["condition": "Synced", "status": "Unknown"]) == 1)
            #expect(scraped.value("steady_runners", ["condition": "Ready", "status": "Unknown"]) == 3)

            #expect(scraped.families["steady_controller_workqueue_depth_by_kind"]?.type == "gauge")
            #expect(scraped.value("steady_controller_workqueue_depth_by_kind", ["kind": "Route"]) == 2)
            #expect(scraped.value("steady_controller_workqueue_depth_by_kind", ["kind": "Action"]) == 1)
            #expect(scraped.value("steady_controller_workqueue_depth_by_kind", ["kind": "Template"]) == 0)
            #expect(scraped.value("steady_controller_workqueue_depth") == 3)

            #expect(
                scraped.value("steady_api_requests_total", ["verb": "create", "resource": "routes", "code": "201"]) == 1)
            #expect(scraped.families["steady_controller_reconcile_duration_seconds"]?.type == "histogram")
        }
    }

    @Test func parserRejectsMalformedText() {
        #expect(throws: PrometheusText.ParseError.self) { try PrometheusText("steady_x 1\n") }
        #expect(throws: PrometheusText.ParseError.self) { try PrometheusText("# TYPE steady_x gauge\nsteady_x{a=b} 1\n") }
        #expect(throws: PrometheusText.ParseError.self) { try PrometheusText("# TYPE steady_x gauge\nsteady_x one\n") }
        let parsed = try? PrometheusText("# TYPE steady_x gauge\nsteady_x{a=\"q\\\"\"} 1.5\n")
        #expect(parsed?.value("steady_x", ["a": "q\""]) == 1.5)
    }
}

/// The controller runtime fills the readiness checks and the scrape-time collectors.
@Suite(.timeLimit(.minutes(2))) struct ControllerRuntimeHealthTests {
    @Test func readyOnceTheInformerSyncedAndRunnersCountedFromTheCache() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-runtime")
        defer { directory.remove() }
        let runtime = try ControllerRuntime(
            configuration: .init(dataDirectory: directory.url, port: 0), logger: Logger(label: "test"))
        defer { runtime.store.close() }
        _ = try await runtime.objects.create(
            Kinds.runner, body: ["apiVersion": "steady.dev/v1", "kind": "Runner", "metadata": ["name": "web-1"]],
            options: WriteOptions(fieldManager: "test"))
        let token = runtime.identity.adminToken
        try await Application(router: runtime.server.makeRouter()).test(.router) { client in
            func probe(_ uri: String) async throws -> (status: Int, text: String) {
                try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(token)"]) {
                    (Int($0.status.code), String(buffer: $0.body))
                }
            }
            let before = try await probe("/readyz?verbose")
            #expect(before.status == 503)
            #expect(before.text.contains("[+]store ok"))
            #expect(before.text.contains("[-]informers failed: the informer has not listed the store yet"))
            #expect(try await probe("/livez").status == 200)

            try await withThrowingTaskGroup(of: Void.self) { group in
                // The runtime's one informer, which the reconcilers and the gateway share.
                group.addTask { try await runtime.informer.run() }
                // Readiness is the signal: wait for the informer's first list, bounded by the suite's time limit.
                while !runtime.informer.cache.hasSynced { try await Task.sleep(for: .milliseconds(10)) }
                let after = try await probe("/readyz?verbose")
                #expect(after.status == 200, "\(after.text)")
                #expect(after.text.hasSuffix("readyz check passed\n"))
                let scraped = try PrometheusText(try await probe("/metrics").text)
                #expect(scraped.value("steady_runners", ["condition": "Ready", "status": "Unknown"]) == 1)
                // The store's SQLite is open, so its memory is more than nothing.
                #expect((scraped.value("steady_sqlite_memory_bytes", [:]) ?? 0) > 0)
                group.cancelAll()
            }
        }
    }
}
