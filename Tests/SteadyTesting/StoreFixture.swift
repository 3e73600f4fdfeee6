import Foundation
import Reconciler

/// An SQLite store in its own temporary directory.
public struct StoreFixture: Sendable {
    public let directory: TemporaryDirectory
    public let store: SQLiteStore

    public init() throws {
        directory = try TemporaryDirectory(prefix: "steady-store")
        store = try SQLiteStore(path: directory.file("state.db").path)
    }

    public func remove() {
        store.close()
        directory.remove()
    }
}
