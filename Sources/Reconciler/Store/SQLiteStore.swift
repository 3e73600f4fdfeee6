import Foundation

/// An `ObjectStore` kept in one SQLite database in WAL mode, in the manner of k3s's kine.
///
/// Writes go through a single group-committing writer (`SQLiteWriter`, on a thread of its own); reads use a pool
/// of separate connections (`SQLiteReader`, on threads of their own, never Swift's cooperative pool, so a slow
/// disk stalls no task) that see the last committed snapshot and never wait for the writer; watches are
/// served from the event log and then from an in-memory fan-out (`StoreWatchHub`). A write's call returns only
/// after its transaction has committed. The database file belongs to one process at a time.
public final class SQLiteStore: ObjectStore {
    /// How hard a commit works to survive a crash.
    public enum Synchronous: Sendable {
        /// WAL with synchronous=NORMAL: committed writes survive the process being killed, not a power loss.
        case normal
        /// WAL with synchronous=FULL: committed writes survive a power loss; each batch costs one fsync.
        case full
    }

    /// The database file's path.
    public let path: String
    private let writer: SQLiteWriter
    private let reader: SQLiteReader
    private let watchBufferSize: Int

    /// Opens the database at `path`, creating the file (mode 0600) and the schema when missing.
    ///
    /// `watchBufferSize` bounds the live events a watcher may leave unconsumed before its stream ends with
    /// `unavailable`. The directory must exist.
    public init(path: String, synchronous: Synchronous = .normal, watchBufferSize: Int = 1024) throws {
        self.path = path
        self.writer = try SQLiteWriter(path: path, synchronous: synchronous)
        self.reader = SQLiteReader(path: path)
        self.watchBufferSize = max(watchBufferSize, 1)
    }

    deinit {
        close()
    }

    /// Closes the store: queued writes and open watches end with `unavailable`, and so does every later call.
    ///
    /// A batch already committing finishes first. Calling `close` more than once is harmless.
    public func close() {
        writer.close()
        reader.close()
    }

    /// The revision of the newest committed write, read from the database.
    public func currentRevision() async throws -> Int64 {
        try await reader.run { try $0.revisions().current }
    }

    /// The live object with that kind and name, or nil; reads the last committed snapshot.
    public func get(kind: String, name: String) async throws -> StoredObject? {
        try await reader.run { try $0.get(kind: kind, name: name) }
    }

    /// All live objects of one kind (or every kind), sorted by name, with the revision of the snapshot they came from.
    public func list(kind: String?) async throws -> (objects: [StoredObject], revision: Int64) {
        try await reader.run { try $0.list(kind: kind) }
    }

    /// Creates an object at the next revision; fails with `alreadyExists` when the name is taken.
    public func create(kind: String, name: String, value: Data) async throws -> StoredObject {
        try Self.object(await writer.submit(.create(kind: kind, name: name, value: value)))
    }

    /// Replaces an object's value if `expectedRevision` is nil or matches; fails with `notFound` or `conflict`.
    public func update(kind: String, name: String, value: Data, expectedRevision: Int64?) async throws -> StoredObject {
        try Self.object(
            await writer.submit(.update(kind: kind, name: name, value: value, expectedRevision: expectedRevision))
        )
    }

    /// Deletes an object if `expectedRevision` is nil or matches; returns its last value at the delete's revision.
    public func delete(kind: String, name: String, expectedRevision: Int64?) async throws -> StoredObject {
        try Self.object(await writer.submit(.delete(kind: kind, name: name, expectedRevision: expectedRevision)))
    }

    /// Events after `fromRevision`, replayed from the log and then delivered live; see `ObjectStore.watch`.
    ///
    /// Iterate the stream from one task. Cancelling that task, or dropping the stream, unregisters the watcher.
    public func watch(kind: String?, fromRevision: Int64) async throws -> AsyncThrowingStream<StoreEvent, any Error> {
        let subscription = StoreWatchSubscription(
            hub: writer.hub,
            reader: reader,
            kind: kind,
            fromRevision: fromRevision,
            capacity: watchBufferSize
        )
        try await subscription.start()
        // The lease lives as long as the stream; when the stream goes away it unregisters the subscription.
        let lease = StoreWatchLease(subscription)
        return AsyncThrowingStream(unfolding: { try await lease.subscription.next() })
    }

    /// Drops events older than the newest `keep` revisions (negative counts as 0); never moves backwards.
    public func compact(keepingRevisions keep: Int64) async throws -> Int64 {
        guard case .revision(let revision) = try await writer.submit(.compact(keep: keep)) else {
            throw StoreError(code: .unavailable, message: "store writer returned no revision for compact")
        }
        return revision
    }

    /// The revision up to which history has been dropped.
    public func compactedRevision() async throws -> Int64 {
        try await reader.run { try $0.revisions().compacted }
    }

    /// Live watch subscriptions, for tests and metrics.
    var watcherCount: Int {
        writer.hub.subscriberCount
    }

    /// The underlying writer, so tests can pause it and build batches of known content.
    var batchWriter: SQLiteWriter {
        writer
    }

    private static func object(_ output: SQLiteWriter.Output) throws -> StoredObject {
        guard case .object(let object) = output else {
            throw StoreError(code: .unavailable, message: "store writer returned no object")
        }
        return object
    }
}
