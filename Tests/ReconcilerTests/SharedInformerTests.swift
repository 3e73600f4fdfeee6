import Foundation
import Logging
import Prometheus
import Resources
import SteadyTesting
import Synchronization
import Testing

@testable import Reconciler

/// A store that counts the lists and watches of every kind (what an informer costs), and can fail the next
/// updates of one kind (a disk that refuses writes for a while).
final class CountingStore: ObjectStore {
    let base: any ObjectStore
    let counts = Mutex((lists: 0, watches: 0))
    let failingUpdates = Mutex((kind: "", remaining: 0))

    init(_ base: any ObjectStore) { self.base = base }

    func currentRevision() async throws -> Int64 { try await base.currentRevision() }
    func get(kind: String, name: String) async throws -> StoredObject? { try await base.get(kind: kind, name: name) }
    func list(kind: String?) async throws -> (objects: [StoredObject], revision: Int64) {
        if kind == nil { counts.withLock { $0.lists += 1 } }
        return try await base.list(kind: kind)
    }
    func create(kind: String, name: String, value: Data) async throws -> StoredObject {
        try await base.create(kind: kind, name: name, value: value)
    }
    func update(kind: String, name: String, value: Data, expectedRevision: Int64?) async throws -> StoredObject {
        let fails = failingUpdates.withLock { failing in
            guard failing.kind == kind, failing.remaining > 0 else { return false }
            failing.remaining -= 1
            return true
        }
        if fails { throw StoreError(code: .unavailable, message: "injected: disk full") }
        return try await base.update(kind: kind, name: name, value: value, expectedRevision: expectedRevision)
    }
    func delete(kind: String, name: String, expectedRevision: Int64?) async throws -> StoredObject {
        try await base.delete(kind: kind, name: name, expectedRevision: expectedRevision)
    }
    func watch(kind: String?, fromRevision: Int64) async throws -> AsyncThrowingStream<StoreEvent, any Error> {
        if kind == nil { counts.withLock { $0.watches += 1 } }
        return try await base.watch(kind: kind, fromRevision: fromRevision)
    }
    func compact(keepingRevisions keep: Int64) async throws -> Int64 { try await base.compact(keepingRevisions: keep) }
    func compactedRevision() async throws -> Int64 { try await base.compactedRevision() }
}

@Suite(.timeLimit(.minutes(1))) struct SharedInformerTests {
    typealias F = ControllerFixtures

    /// The reconcilers and the agent gateway of one controller follow the store through one list and one watch.
    @Test func theReconcilersAndTheGatewayShareOneListAndWatch() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = CountingStore(fixture.store)
        let objects = ObjectService(store: store)
        let logger = Logger(label: "test")
        for object in [
            F.runner("web-1", labels: ["role": "web"]), F.action("notify"), F.route("alerts", actions: ["notify"]),
            F.assignment("web", selector: ["role": "web"], routes: ["alerts"], actions: ["notify"]),
        ] {
            let info = try #require(Kinds.info(forKind: object["kind"]?.stringValue ?? ""))
            _ = try await objects.create(info, body: object, options: WriteOptions())
        }
        let informer = SharedInformer(store: store, logger: logger)
        let gateway = AgentGateway(
            objects: objects, credentials: AgentCredentials(store: store, adminToken: "admin-token"),
            informer: informer, logger: logger)
        let manager = ControllerManager(
            objects: objects, registry: PrometheusCollectorRegistry(), logger: logger, syncIndex: gateway.syncIndex,
            informer: informer)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await informer.run() }
            group.addTask { try await gateway.run() }
            group.addTask { try await manager.run() }
            // Both consumers act on what the one informer delivered: the gateway plans the slice, the manager
            // writes the route's status.
            try await waitUntil {
                var stream = await gateway.connect(runner: "web-1", revision: 0, digest: nil).makeAsyncIterator()
                return (await stream.next()?.objects ?? []).count == 2
            }
            try await waitUntil {
                let route = try await objects.get(Kinds.route, name: "alerts")
                return F.ready(route["status"] ?? .null) != nil
            }
            #expect(store.counts.withLock { $0.lists } == 1)
            #expect(store.counts.withLock { $0.watches } == 1)
            group.cancelAll()
        }
    }

    /// A subscriber that joins after the first list starts from the whole cache.
    @Test func aLateSubscriberIsGivenTheWholeCache() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        _ = try await fixture.store.create(kind: "Action", name: "notify", value: F.action("notify").jsonData())
        let informer = SharedInformer(store: fixture.store, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await informer.run() }
            try await waitUntil { informer.cache.hasSynced }
            let received = Mutex<[ObjectChange]>([])
            informer.subscribe { update in received.withLock { $0 += update.changes } }
            #expect(received.withLock { $0.map(\.key.description) } == ["Action/notify"])
            group.cancelAll()
        }
    }

    /// A Runner status write that fails is retried until it is written, not dropped.
    @Test func aFailedRunnerStatusWriteIsRetried() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let store = CountingStore(fixture.store)
        let objects = ObjectService(store: store)
        _ = try await objects.create(Kinds.runner, body: F.runner("web-1"), options: WriteOptions())
        let gateway = AgentGateway(
            objects: objects, credentials: AgentCredentials(store: store, adminToken: "admin-token"),
            configuration: .init(statusRetry: Backoff(base: .milliseconds(1), cap: .milliseconds(10))),
            logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await gateway.run() }
            // The gateway has written NeverConnected: it knows the runner.
            try await waitUntil {
                let runner = try await objects.get(Kinds.runner, name: "web-1")
                return runner["status"]?["conditions"] != nil
            }
            store.failingUpdates.withLock { $0 = (kind: "Runner", remaining: 3) }
            await gateway.report(runner: "web-1", AgentReport(hostname: "web-host", synced: false, reason: "Testing"))
            let runner = try await objects.get(Kinds.runner, name: "web-1")
            #expect(runner["status"]?["hostname"] == "web-host")
            #expect(store.failingUpdates.withLock { $0.remaining } == 0)
            group.cancelAll()
        }
    }
}
