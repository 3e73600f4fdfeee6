import Logging
import Prometheus
import Resources
import Routing
import SteadyTesting
import Testing

@testable import Reconciler

/// A write is compiled once on the controller: the API server's admission fills the cache, and the reconcilers
/// and later writes of the same text reuse what it compiled.
@Suite(.timeLimit(.minutes(5))) struct CompiledCacheReuseTests {
    typealias F = ControllerFixtures

    @Test func theReconcilersReuseWhatAdmissionCompiled() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let compiled = CompiledCache()
        let objects = ObjectService(store: fixture.store, compiled: compiled)
        let manager = ControllerManager(
            objects: objects, registry: PrometheusCollectorRegistry(), logger: Logger(label: "steady.test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await manager.run() }
            _ = try await objects.create(Kinds.action, body: F.action("notify"), options: WriteOptions())
            _ = try await objects.create(
                Kinds.template, body: F.template("summary", body: "{{#input.items}}{{.}}{{/input.items}}"),
                options: WriteOptions())
            _ = try await objects.create(
                Kinds.route, body: F.route("alerts", actions: ["notify"], template: "summary", input: "input.x == 1"),
                options: WriteOptions())
            // One compilation each, by admission (the reconcilers may already be at work).
            #expect(compiled.statistics.compilations == 2)
            // Generous: on a loaded machine the first reconcile can take a while, and waiting costs nothing here.
            try await waitUntil(timeout: .seconds(60)) {
                let route = try await objects.get(Kinds.route, name: "alerts")
                let template = try await objects.get(Kinds.template, name: "summary")
                return route["status"]?["observedGeneration"] == 1 && template["status"]?["observedGeneration"] == 1
            }
            // The reconcilers found both in the cache.
            #expect(compiled.statistics.compilations == 2)
            let reconciled = compiled.statistics.hits
            #expect(reconciled >= 2)
            // A server-side apply of the same route compiles nothing either.
            _ = try await objects.patch(
                Kinds.route, name: "alerts",
                patch: .apply(F.route("alerts", actions: ["notify"], template: "summary", input: "input.x == 1")),
                subresource: nil, options: WriteOptions(fieldManager: "test", force: true))
            #expect(compiled.statistics.compilations == 2)
            #expect(compiled.statistics.hits > reconciled)
            group.cancelAll()
            try await group.waitForAll()
        }
    }
}
