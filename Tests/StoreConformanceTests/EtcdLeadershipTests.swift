import EtcdStore
import Foundation
import Logging
import Reconciler
import SteadyTesting
import Synchronization
import Testing

/// Leader election, fencing and the shared identity, against a real etcd on loopback ports.
@Suite(.serialized, .timeLimit(.minutes(3))) struct EtcdLeadershipTests {
    @Test func oneLeaderAtATimeAndAnEndedTermCannotWrite() async throws {
        guard let server = try EtcdServer.start() else { return }
        defer { server.remove() }
        let store = try await EtcdStore.connect(configuration: EtcdConfiguration(endpoints: [server.endpoint]))
        defer { store.close() }
        let log = Logger(label: "test")
        let terms = TermLog()
        let electors = ["a", "b"].map { EtcdLeaderElection(store: store, identity: $0, ttl: .seconds(2), logger: log) }
        let tasks = electors.map { elector in
            Task {
                try await elector.run { fenced in
                    await terms.begin(elector.identity, store: fenced)
                    // Lead until the term is cancelled.
                    while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
                    await terms.end(elector.identity)
                }
            }
        }
        defer { tasks.forEach { $0.cancel() } }

        let first = try #require(await terms.waitForLeader(other: nil))
        #expect(await terms.maximumConcurrentLeaders == 1)
        let firstStore = try #require(await terms.store(of: first))
        _ = try await firstStore.create(kind: "Route", name: "by-first", value: Data("{}".utf8))

        // The first leader stops (as on graceful shutdown): it revokes its lease and the other takes over.
        tasks[first == "a" ? 0 : 1].cancel()
        let second = try #require(await terms.waitForLeader(other: first))
        #expect(second != first)
        #expect(await terms.maximumConcurrentLeaders == 1)

        // The first term's fenced store can no longer write; the new leader's can.
        let stale = await #expect(throws: StoreError.self) {
            _ = try await firstStore.create(kind: "Route", name: "late", value: Data("{}".utf8))
        }
        #expect(stale?.code == .notLeader)
        #expect(try await store.get(kind: "Route", name: "late") == nil)
        let secondStore = try #require(await terms.store(of: second))
        _ = try await secondStore.update(kind: "Route", name: "by-first", value: Data("{\"v\":2}".utf8), expectedRevision: nil)
    }

    @Test func controllersStartingAtOnceShareOneIdentity() async throws {
        guard let server = try EtcdServer.start() else { return }
        defer { server.remove() }
        let directories = try (0..<3).map { _ in try TemporaryDirectory(prefix: "steady-identity") }
        defer { directories.forEach { $0.remove() } }
        let endpoint = server.endpoint
        let identities = try await withThrowingTaskGroup(of: (Int, String, String).self) { group in
            for (index, directory) in directories.enumerated() {
                group.addTask {
                    let store = try await EtcdStore.connect(configuration: EtcdConfiguration(endpoints: [endpoint]))
                    defer { store.close() }
                    let identity = try await EtcdClusterIdentity.loadOrCreate(
                        store: store, dataDirectory: directory.url.appendingPathComponent("data"), serverNames: [],
                        listenHost: "127.0.0.1", logger: Logger(label: "test"))
                    return (index, identity.caCertificatePEM, identity.adminToken)
                }
            }
            var identities: [(Int, String, String)] = []
            for try await identity in group { identities.append(identity) }
            return identities
        }
        #expect(identities.count == 3)
        #expect(Set(identities.map(\.1)).count == 1, "every controller has the same CA")
        #expect(Set(identities.map(\.2)).count == 1, "every controller has the same admin token")
        // Each serving certificate is issued by that CA, so clients trusting it reach any replica.
        for directory in directories {
            let served = try String(contentsOf: directory.url.appendingPathComponent("data/ca.crt"), encoding: .utf8)
            #expect(served == identities[0].1)
        }
    }
}

/// Who leads, as the electors report it.
private actor TermLog {
    private var leaders: [String: any ObjectStore] = [:]
    private var ended: Set<String> = []
    private(set) var maximumConcurrentLeaders = 0

    func begin(_ identity: String, store: any ObjectStore) {
        leaders[identity] = store
        maximumConcurrentLeaders = max(maximumConcurrentLeaders, leaders.count)
    }

    func end(_ identity: String) {
        leaders[identity] = nil
        ended.insert(identity)
    }

    func store(of identity: String) -> (any ObjectStore)? {
        leaders[identity]
    }

    private func currentLeader(other: String?) -> String? {
        leaders.keys.first { $0 != other }
    }

    /// The leader other than `other`, waiting up to 20 s for one.
    func waitForLeader(other: String?) async -> String? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(20))
        while clock.now < deadline {
            if let leader = currentLeader(other: other) { return leader }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }
}
