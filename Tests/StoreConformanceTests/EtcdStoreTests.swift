import EtcdStore
import Foundation
import Reconciler
import SteadyTesting
import Testing

/// What only the etcd store does: resuming watches across an etcd restart, cutting off a slow watcher, and
/// configuration parsing.
@Suite(.serialized, .timeLimit(.minutes(3))) struct EtcdStoreTests {
    @Test func aWatchResumesAcrossAnEtcdRestartWithoutGapOrDuplicate() async throws {
        guard let server = try EtcdServer.start() else { return }
        defer { server.remove() }
        let store = try await EtcdStore.connect(configuration: EtcdConfiguration(endpoints: [server.endpoint]))
        defer { store.close() }
        let base = try await store.currentRevision()
        let stream = try await store.watch(kind: "Route", fromRevision: base)
        for index in 1...5 {
            _ = try await store.create(kind: "Route", name: "before-\(index)", value: json("\(index)"))
        }
        server.stop(signal: SIGKILL)
        try server.start()
        for index in 1...5 {
            // Until the client's connection is back, a write fails as unavailable, as it would for an API client.
            _ = try await createRetryingWhileUnavailable(store, name: "after-\(index)", value: json("\(index)"))
        }
        let events = try await StoreTestSupport.collect(stream, count: 10, timeout: .seconds(60))
        #expect(events.map(\.revision) == Array(base + 1...base + 10))
        #expect(events.map(\.object.name) == (1...5).map { "before-\($0)" } + (1...5).map { "after-\($0)" })
    }

    /// etcd answers a steady stream of requests with dozens of PINGs a second (grpc-go's bandwidth probe); SwiftNIO's
    /// HTTP/2 flood guard used to close the connection after 200 in 30 s, failing every request in flight.
    @Test func aSustainedStreamOfRequestsKeepsItsConnection() async throws {
        guard let server = try EtcdServer.start() else { return }
        defer { server.remove() }
        let store = try await EtcdStore.connect(configuration: EtcdConfiguration(endpoints: [server.endpoint]))
        defer { store.close() }
        let count = 3_000
        let failures = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    var failed = 0
                    for index in stride(from: worker, to: count, by: 16) {
                        do {
                            _ = try await store.create(kind: "Runner", name: "r-\(index)", value: json("\(index)"))
                        } catch {
                            failed += 1
                        }
                    }
                    return failed
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(failures == 0, "\(failures) of \(count) writes failed")
        #expect(try await store.list(kind: "Runner").objects.count == count)
    }

    func createRetryingWhileUnavailable(_ store: EtcdStore, name: String, value: Data) async throws -> StoredObject {
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while true {
            do {
                return try await store.create(kind: "Route", name: name, value: value)
            } catch let error as StoreError where error.code == .unavailable && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    @Test func aWatcherThatFallsBehindIsCutOffAndNotResumed() async throws {
        guard let server = try EtcdServer.start() else { return }
        defer { server.remove() }
        let store = try await EtcdStore.connect(
            configuration: EtcdConfiguration(endpoints: [server.endpoint], watchBufferSize: 4))
        defer { store.close() }
        let base = try await store.currentRevision()
        let slow = try await store.watch(kind: nil, fromRevision: base)
        for index in 1...20 {
            _ = try await store.create(kind: "Route", name: "r\(index)", value: json("\(index)"))
        }
        // Let etcd deliver everything before the slow watcher reads.
        let clock = ContinuousClock()
        let settle = clock.now.advanced(by: .seconds(1))
        try await Task.sleep(until: settle, clock: clock)
        var received: [Int64] = []
        var failure: StoreError?
        do {
            for try await event in slow { received.append(event.revision) }
        } catch let error as StoreError {
            failure = error
        }
        #expect(received == Array(base + 1...base + 4))
        #expect(failure?.code == .unavailable)
        #expect(failure?.message.contains("fell behind") == true)
    }

    @Test func storeURLsAreParsedWithErrorsThatSayWhatToWrite() throws {
        let configuration = try EtcdConfiguration(url: "etcd://10.0.0.1:2379,10.0.0.2:2379", prefix: "/steady/")
        #expect(configuration.endpoints == ["10.0.0.1:2379", "10.0.0.2:2379"])
        #expect(EtcdKeys(prefix: configuration.prefix).prefix == "/steady")
        for bad in ["etcd://", "etcd://host", "etcd://host:0", "mysql://h:1", "etcd://:2379"] {
            #expect(throws: EtcdConfigurationError.self, "\(bad)") { try EtcdConfiguration(url: bad) }
        }
    }

    @Test func objectKeysKeepKindsApart() {
        let keys = EtcdKeys(prefix: "steady")
        #expect(String(decoding: keys.object(kind: "Route", name: "web"), as: UTF8.self) == "/steady/objects/Route/web")
        let route = keys.objects(kind: "Route")
        #expect(String(decoding: route.start, as: UTF8.self) == "/steady/objects/Route/")
        #expect(String(decoding: route.end, as: UTF8.self) == "/steady/objects/Route0")
        #expect(keys.kindAndName(of: keys.object(kind: "RouteSet", name: "a/b"))! == ("RouteSet", "a/b"))
        #expect(keys.kindAndName(of: keys.leader) == nil)
    }
}

private func json(_ text: String) -> Data {
    StoreTestSupport.json(text)
}
