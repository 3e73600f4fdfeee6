import Events
import Foundation
import Logging
import Resources
import SteadyTesting
import Testing

@testable import Reconciler

/// Route and Action delivery counters written by several controller replicas into one store.
@Suite(.timeLimit(.minutes(1))) struct EventStatusWriterTests {
    static func writer(
        _ objects: ObjectService, _ directory: TemporaryDirectory, replica: String?
    ) throws -> EventStatusWriter {
        let pipeline = EventPipeline(
            configuration: .init(location: "controller"),
            store: try EventStore(path: directory.file("events-\(replica ?? "alone").db").path),
            httpClient: EventPipeline.sharedHTTPClient, metrics: EventMetrics(registry: APIMetrics().registry),
            logger: Logger(label: "test"))
        return EventStatusWriter(pipeline: pipeline, objects: objects, replica: replica, logger: Logger(label: "test"))
    }

    static func counters(delivered: Int64 = 0, failed: Int64 = 0, failingInARow: Int64 = 0, error: String? = nil)
        -> EventPipeline.Counters
    {
        var counters = EventPipeline.Counters()
        (counters.matched, counters.delivered, counters.failed) = (delivered + failed, delivered, failed)
        (counters.failingInARow, counters.lastError) = (failingInARow, error)
        return counters
    }

    static func create(_ objects: ObjectService) async throws {
        let action: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "Action", "metadata": ["name": "notify"], "spec": ["type": "stdout"],
        ]
        let route: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "Route", "metadata": ["name": "all"], "spec": ["actions": ["notify"]],
        ]
        _ = try await objects.create(Kinds.action, body: action, options: WriteOptions())
        _ = try await objects.create(Kinds.route, body: route, options: WriteOptions())
    }

    @Test func replicasAddTheirCountsAndKeepTheirOwnPendingDeliveries() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        try await Self.create(objects)
        let (a, b) = (
            try Self.writer(objects, fixture.directory, replica: "a"),
            try Self.writer(objects, fixture.directory, replica: "b")
        )
        // Each replica writes its running totals many times over, concurrently with the other.
        await withTaskGroup(of: Void.self) { group in
            for (writer, step) in [(a, Int64(1)), (b, Int64(10))] {
                group.addTask {
                    var before = EventPipeline.Counters()
                    for round in 1...20 {
                        let now = Self.counters(delivered: step * Int64(round))
                        if await writer.write(Kinds.route, "all", now, before, Int(step)) { before = now }
                    }
                }
            }
        }
        let status = try await objects.get(Kinds.route, name: "all")["status"]
        #expect(status?["delivered"]?.intValue == 220, "\(status ?? nil)")
        #expect(status?["matchedEvents"]?.intValue == 220)
        // Pending is a level: each replica's own, summed; a replica with nothing due any more says so for itself.
        #expect(status?["pending"]?.intValue == 11)
        #expect(status?["replicas"]?["a"]?["pending"]?.intValue == 1)
        #expect(await a.write(Kinds.route, "all", Self.counters(delivered: 20), Self.counters(delivered: 20), 0))
        let after = try await objects.get(Kinds.route, name: "all")["status"]
        #expect(after?["pending"]?.intValue == 10, "\(after ?? nil)")
        #expect(after?["delivered"]?.intValue == 220)
    }

    @Test func anActionIsDegradedWhileAnyReplicaKeepsFailing() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        try await Self.create(objects)
        let (a, b) = (
            try Self.writer(objects, fixture.directory, replica: "a"),
            try Self.writer(objects, fixture.directory, replica: "b")
        )
        func degraded() async throws -> (status: String?, message: String?) {
            let conditions = try await objects.get(Kinds.action, name: "notify")["status"]?["conditions"]?.arrayValue ?? []
            let found = conditions.first { $0["type"]?.stringValue == "Degraded" }
            return (found?["status"]?.stringValue, found?["message"]?.stringValue)
        }
        let failing = Self.counters(failed: 3, failingInARow: 3, error: "connection refused")
        #expect(await a.write(Kinds.action, "notify", failing, .init(), 0))
        #expect(try await degraded().status == "True")
        #expect(try await degraded().message?.contains("on a; the last: connection refused") == true)
        // Another replica's success does not hide the failures on the first.
        #expect(await b.write(Kinds.action, "notify", Self.counters(delivered: 5), .init(), 0))
        #expect(try await degraded().status == "True")
        // Once the failing replica delivers again, nothing is degraded.
        #expect(await a.write(Kinds.action, "notify", Self.counters(delivered: 1, failed: 3), failing, 0))
        #expect(try await degraded().status == "False")
        let status = try await objects.get(Kinds.action, name: "notify")["status"]
        #expect(status?["delivered"]?.intValue == 6)
        #expect(status?["failed"]?.intValue == 3)
    }

    @Test func aLoneControllerWritesNoReplicas() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        try await Self.create(objects)
        let alone = try Self.writer(objects, fixture.directory, replica: nil)
        #expect(await alone.write(Kinds.route, "all", Self.counters(delivered: 2), .init(), 3))
        let status = try await objects.get(Kinds.route, name: "all")["status"]
        #expect(status?["pending"]?.intValue == 3)
        #expect(status?["delivered"]?.intValue == 2)
        #expect(status?["replicas"] == nil)
    }
}
