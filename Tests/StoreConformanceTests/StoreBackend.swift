import EtcdStore
import Foundation
import Reconciler
import SteadyTesting
import Testing

/// A backend the conformance suite runs against.
enum StoreBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case etcd

    var testDescription: String { rawValue }

    /// Runs `body` with a fresh, empty store of this backend and the store's revision before any write.
    ///
    /// SQLite starts at 0; etcd at 1 (its empty keyspace's revision), so the suite counts revisions from `base`.
    /// etcd tests each start their own etcd on loopback ports, and are skipped (with a printed reason) when no
    /// etcd is installed.
    func withStore(_ body: (any ObjectStore, _ base: Int64) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let directory = try TemporaryDirectory(prefix: "steady-store")
            defer { directory.remove() }
            let store = try SQLiteStore(path: directory.file("store.db").path)
            defer { store.close() }
            try await body(store, try await store.currentRevision())
        case .etcd:
            guard let server = try EtcdServer.start() else { return }
            defer { server.remove() }
            let store = try await EtcdStore.connect(
                configuration: EtcdConfiguration(endpoints: [server.endpoint], prefix: "/steady-test"))
            defer { store.close() }
            try await body(store, try await store.currentRevision())
        }
    }
}
