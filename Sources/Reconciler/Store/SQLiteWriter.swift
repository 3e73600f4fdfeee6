import CSQLite
import Dispatch
import Foundation
import SQLiteSupport
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The single writer of a `SQLiteStore`, committing concurrent writes in groups.
///
/// Callers queue requests and suspend. One drain loop on a serial queue takes everything queued, commits it in
/// one transaction (one fsync with `.full`), publishes the events and then resumes the callers. While a batch
/// commits, new requests pile up and form the next batch, so batches grow with load. Each request is checked
/// on its own, so a failed compare-and-set is an answer for that caller only. When one request's data makes
/// SQLite fail (e.g. a value over the length limit), that request fails and the rest commit without it; a
/// failure of the database itself (I/O error, disk full) fails the whole batch.
final class SQLiteWriter: Sendable {
    /// A write the store can perform.
    enum Operation: Sendable {
        case create(kind: String, name: String, value: Data)
        case update(kind: String, name: String, value: Data, expectedRevision: Int64?)
        case delete(kind: String, name: String, expectedRevision: Int64?)
        case compact(keep: Int64)
    }

    /// The answer to one operation.
    enum Output: Sendable {
        case object(StoredObject)
        case revision(Int64)
    }

    private struct Request: Sendable {
        let operation: Operation
        let continuation: CheckedContinuation<Output, any Error>
    }

    private struct Pending {
        var requests: [Request] = []
        var draining = false
        var paused = false
        var closed = false
    }

    private struct Counters {
        var revision: Int64
        var compacted: Int64
    }

    private struct BatchOutcome: Sendable {
        var results: [Result<Output, StoreError>]
        var events: [StoreEvent]
    }

    /// An error raised while applying the operation at `offset` of a batch.
    private struct OperationFailure: Error {
        var offset: Int
        var error: any Error

        /// Whether the error comes from this request's data rather than from the database as a whole.
        var isRequestSpecific: Bool {
            guard let code = (error as? SQLiteError)?.resultCode else {
                return false
            }
            return [SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE].contains(code & 0xff)
        }
    }

    private enum Admission {
        case rejected
        case queued
        case startDrain
    }

    /// The largest number of requests committed in one transaction, to bound latency and transaction size.
    private static let maxBatch = 1024

    /// Receives every committed event; watchers subscribe here.
    let hub: StoreWatchHub
    private let connection: GuardedSQLiteConnection
    private let queue = DispatchQueue(label: "steady.store.writer", qos: .userInitiated)
    private let pending = Mutex(Pending())
    // Only the drain loop touches the counters; the mutex is uncontended and just satisfies Sendable.
    private let counters: Mutex<Counters>
    private let batches = Atomic<Int>(0)

    /// Opens (creating if needed) the database at `path`, sets it up for WAL and loads the revision counters.
    init(path: String, synchronous: SQLiteStore.Synchronous) throws {
        try Self.createPrivateFile(path)
        let connection: SQLiteConnection
        let counters: Counters
        do {
            connection = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
            try Self.configure(connection, synchronous: synchronous)
            counters = try Self.loadCounters(connection)
        } catch {
            throw SQLiteError.reported(error)
        }
        Self.restrictPermissions(path)
        self.counters = Mutex(counters)
        self.hub = StoreWatchHub(revision: counters.revision)
        self.connection = GuardedSQLiteConnection(connection)
    }

    /// Queues `operation` for the next batch and returns its answer once that batch has committed.
    ///
    /// The write is not withdrawn when the calling task is cancelled: it may already be committing.
    func submit(_ operation: Operation) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let request = Request(operation: operation, continuation: continuation)
            let admission = pending.withLock { pending -> Admission in
                if pending.closed {
                    return .rejected
                }
                pending.requests.append(request)
                if pending.draining || pending.paused {
                    return .queued
                }
                pending.draining = true
                return .startDrain
            }
            switch admission {
            case .rejected:
                continuation.resume(throwing: StoreError(code: .unavailable, message: "store is closed"))
            case .queued:
                break
            case .startDrain:
                queue.async { self.drain() }
            }
        }
    }

    /// Fails queued requests, waits for the batch in flight, closes the connection and ends all watchers.
    func close() {
        let orphaned = pending.withLock { pending -> [Request] in
            pending.closed = true
            defer { pending.requests.removeAll() }
            return pending.requests
        }
        for request in orphaned {
            request.continuation.resume(throwing: StoreError(code: .unavailable, message: "store is closed"))
        }
        // The drain loop runs on `queue`, so this returns once the batch in flight has been answered.
        queue.sync {}
        connection.close()
        hub.close()
    }

    /// Holds queued requests back until `resume()`, so tests can build a batch of known content.
    func pause() {
        pending.withLock { $0.paused = true }
    }

    /// Lets held-back requests commit, as one batch when there are few enough.
    func resume() {
        let start = pending.withLock { pending -> Bool in
            pending.paused = false
            guard !pending.draining, !pending.requests.isEmpty, !pending.closed else {
                return false
            }
            pending.draining = true
            return true
        }
        if start {
            queue.async { self.drain() }
        }
    }

    /// Caps the size of any value or name the writer stores, so tests can make one request fail inside SQLite.
    func limitLength(to bytes: Int32) throws {
        try connection.withConnection { $0.setLimit(SQLITE_LIMIT_LENGTH, bytes) }
    }

    /// Requests waiting for a batch.
    var queuedCount: Int {
        pending.withLock { $0.requests.count }
    }

    /// Transactions committed since the store was opened.
    var committedBatches: Int {
        batches.load(ordering: .relaxed)
    }

    private func drain() {
        while true {
            let requests = pending.withLock { pending -> [Request] in
                guard !pending.requests.isEmpty, !pending.paused else {
                    pending.draining = false
                    return []
                }
                defer { pending.requests.removeAll(keepingCapacity: true) }
                return pending.requests
            }
            if requests.isEmpty {
                return
            }
            var start = 0
            while start < requests.count {
                let end = min(start + Self.maxBatch, requests.count)
                commit(requests[start..<end])
                start = end
            }
        }
    }

    private func commit(_ batch: ArraySlice<Request>) {
        let outcome: BatchOutcome
        do {
            let operations = batch.map(\.operation)
            outcome = try connection.withConnection { try apply(operations, on: $0) }
        } catch let failure as OperationFailure where failure.isRequestSpecific && batch.count > 1 {
            // One request's data broke the transaction: fail just that one and commit the others without it.
            let culprit = batch.index(batch.startIndex, offsetBy: failure.offset)
            batch[culprit].continuation.resume(throwing: SQLiteError.reported(failure.error))
            commit(ArraySlice(batch[..<culprit] + batch[(culprit + 1)...]))
            return
        } catch {
            // Anything else (disk full, I/O error, closed store) would fail every request the same way.
            let reported = SQLiteError.reported((error as? OperationFailure)?.error ?? error)
            for request in batch {
                request.continuation.resume(throwing: reported)
            }
            return
        }
        batches.add(1, ordering: .relaxed)
        // Publish before answering, so a writer that then watches from its revision cannot miss its own event.
        hub.publish(outcome.events)
        for (request, result) in zip(batch, outcome.results) {
            request.continuation.resume(with: result)
        }
    }

    private func apply(_ operations: [Operation], on connection: SQLiteConnection) throws -> BatchOutcome {
        let start = counters.withLock { $0 }
        var state = start
        var outcome = BatchOutcome(results: [], events: [])
        outcome.results.reserveCapacity(operations.count)
        try connection.transaction("BEGIN IMMEDIATE") {
            for (offset, operation) in operations.enumerated() {
                do {
                    outcome.results.append(
                        try apply(operation, on: connection, state: &state, events: &outcome.events)
                    )
                } catch {
                    throw OperationFailure(offset: offset, error: error)
                }
            }
            if state.revision != start.revision {
                try Self.setMeta(connection, "revision", state.revision)
            }
            if state.compacted != start.compacted {
                try Self.setMeta(connection, "compacted", state.compacted)
            }
        }
        counters.withLock { $0 = state }
        return outcome
    }

    /// Applies one operation inside the batch transaction; a rule violation is a result, an SQLite error throws.
    private func apply(
        _ operation: Operation,
        on connection: SQLiteConnection,
        state: inout Counters,
        events: inout [StoreEvent]
    ) throws -> Result<Output, StoreError> {
        let revision = state.revision + 1
        let event: StoreEvent
        switch operation {
        case .create(let kind, let name, let value):
            guard try Self.insertObject(connection, kind: kind, name: name, value: value, revision: revision) else {
                return .failure(
                    StoreError(code: .alreadyExists, message: "\(kind) \"\(name)\" already exists")
                )
            }
            let object = StoredObject(
                kind: kind,
                name: name,
                value: value,
                createRevision: revision,
                modRevision: revision
            )
            event = StoreEvent(type: .added, object: object, revision: revision)

        case .update(let kind, let name, let value, let expectedRevision):
            guard
                let createRevision = try Self.updateObject(
                    connection,
                    kind: kind,
                    name: name,
                    value: value,
                    revision: revision,
                    expectedRevision: expectedRevision
                )
            else {
                return .failure(try Self.rejection(connection, kind: kind, name: name, expected: expectedRevision))
            }
            let object = StoredObject(
                kind: kind,
                name: name,
                value: value,
                createRevision: createRevision,
                modRevision: revision
            )
            event = StoreEvent(type: .modified, object: object, revision: revision)

        case .delete(let kind, let name, let expectedRevision):
            guard
                let deleted = try Self.deleteObject(
                    connection,
                    kind: kind,
                    name: name,
                    expectedRevision: expectedRevision
                )
            else {
                return .failure(try Self.rejection(connection, kind: kind, name: name, expected: expectedRevision))
            }
            let object = StoredObject(
                kind: kind,
                name: name,
                value: deleted.value,
                createRevision: deleted.createRevision,
                modRevision: revision
            )
            event = StoreEvent(type: .deleted, object: object, revision: revision)

        case .compact(let keep):
            let target = max(state.compacted, state.revision - max(keep, 0))
            if target > state.compacted {
                try Self.deleteEvents(connection, through: target)
                state.compacted = target
            }
            return .success(.revision(state.compacted))
        }
        try Self.insertEvent(connection, event)
        events.append(event)
        state.revision = revision
        return .success(.object(event.object))
    }

    // MARK: - Statements

    /// Inserts a new object; returns false when the name is taken.
    private static func insertObject(
        _ connection: SQLiteConnection,
        kind: String,
        name: String,
        value: Data,
        revision: Int64
    ) throws -> Bool {
        let statement = try connection.statement(
            """
            INSERT INTO objects (kind, name, create_rev, mod_rev, value) VALUES (?1, ?2, ?3, ?3, ?4)
            ON CONFLICT (kind, name) DO NOTHING RETURNING create_rev
            """
        )
        defer { statement.reset() }
        try statement.bind(1, kind)
        try statement.bind(2, name)
        try statement.bind(3, revision)
        try statement.bind(4, value)
        return try statement.step()
    }

    /// Updates an object if it exists and matches `expectedRevision`; returns its createRevision, or nil.
    private static func updateObject(
        _ connection: SQLiteConnection,
        kind: String,
        name: String,
        value: Data,
        revision: Int64,
        expectedRevision: Int64?
    ) throws -> Int64? {
        let statement = try connection.statement(
            """
            UPDATE objects SET mod_rev = ?1, value = ?2
            WHERE kind = ?3 AND name = ?4 AND (?5 IS NULL OR mod_rev = ?5) RETURNING create_rev
            """
        )
        defer { statement.reset() }
        try statement.bind(1, revision)
        try statement.bind(2, value)
        try statement.bind(3, kind)
        try statement.bind(4, name)
        try statement.bind(5, expectedRevision)
        return try statement.step() ? statement.int64(0) : nil
    }

    /// Deletes an object if it exists and matches `expectedRevision`; returns its last state, or nil.
    private static func deleteObject(
        _ connection: SQLiteConnection,
        kind: String,
        name: String,
        expectedRevision: Int64?
    ) throws -> (createRevision: Int64, value: Data)? {
        let statement = try connection.statement(
            """
            DELETE FROM objects WHERE kind = ?1 AND name = ?2 AND (?3 IS NULL OR mod_rev = ?3)
            RETURNING create_rev, value
            """
        )
        defer { statement.reset() }
        try statement.bind(1, kind)
        try statement.bind(2, name)
        try statement.bind(3, expectedRevision)
        return try statement.step() ? (statement.int64(0), statement.data(1)) : nil
    }

    /// Explains why an update or delete matched no row: the object is missing or has another revision.
    private static func rejection(
        _ connection: SQLiteConnection,
        kind: String,
        name: String,
        expected: Int64?
    ) throws -> StoreError {
        let statement = try connection.statement("SELECT mod_rev FROM objects WHERE kind = ?1 AND name = ?2")
        defer { statement.reset() }
        try statement.bind(1, kind)
        try statement.bind(2, name)
        guard try statement.step() else {
            return StoreError(code: .notFound, message: "\(kind) \"\(name)\" not found")
        }
        let current = statement.int64(0)
        return StoreError(
            code: .conflict,
            message: "\(kind) \"\(name)\" is at revision \(current), not the expected \(expected ?? 0)",
            currentRevision: current
        )
    }

    private static func insertEvent(_ connection: SQLiteConnection, _ event: StoreEvent) throws {
        let statement = try connection.statement(
            "INSERT INTO events (rev, kind, name, type, create_rev, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        )
        defer { statement.reset() }
        try statement.bind(1, event.revision)
        try statement.bind(2, event.object.kind)
        try statement.bind(3, event.object.name)
        try statement.bind(4, event.type.rawValue)
        try statement.bind(5, event.object.createRevision)
        try statement.bind(6, event.object.value)
        _ = try statement.step()
    }

    private static func deleteEvents(_ connection: SQLiteConnection, through revision: Int64) throws {
        let statement = try connection.statement("DELETE FROM events WHERE rev <= ?1")
        defer { statement.reset() }
        try statement.bind(1, revision)
        _ = try statement.step()
    }

    private static func setMeta(_ connection: SQLiteConnection, _ key: String, _ value: Int64) throws {
        let statement = try connection.statement("UPDATE meta SET value = ?2 WHERE key = ?1")
        defer { statement.reset() }
        try statement.bind(1, key)
        try statement.bind(2, value)
        _ = try statement.step()
    }

    // MARK: - Setup

    private static let schemaVersion: Int64 = 1

    private static func configure(_ connection: SQLiteConnection, synchronous: SQLiteStore.Synchronous) throws {
        try connection.execute("PRAGMA busy_timeout = 5000")
        let mode = try connection.statement("PRAGMA journal_mode = WAL")
        let journalMode = try mode.step() ? mode.text(0).lowercased() : ""
        mode.reset()
        guard journalMode == "wal" else {
            throw StoreError(code: .unavailable, message: "sqlite: cannot switch the database to WAL mode")
        }
        // NORMAL in WAL mode fsyncs only at checkpoints: commits survive a process crash, not a power loss.
        // FULL fsyncs the WAL at every commit, which group commit amortises over the batch.
        switch synchronous {
        case .normal: try connection.execute("PRAGMA synchronous = NORMAL")
        case .full: try connection.execute("PRAGMA synchronous = FULL")
        }
        try connection.execute("PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -16384")
        try connection.transaction("BEGIN IMMEDIATE") {
            let version = try connection.statement("PRAGMA user_version")
            defer { version.reset() }
            let found = try version.step() ? version.int64(0) : 0
            if found > schemaVersion {
                throw StoreError(
                    code: .unavailable,
                    message: "database schema version \(found) is newer than this build's \(schemaVersion)"
                )
            }
            try connection.execute(
                """
                CREATE TABLE IF NOT EXISTS objects (
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    create_rev INTEGER NOT NULL,
                    mod_rev INTEGER NOT NULL,
                    value BLOB NOT NULL,
                    PRIMARY KEY (kind, name)
                );
                CREATE TABLE IF NOT EXISTS events (
                    rev INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    type TEXT NOT NULL,
                    create_rev INTEGER NOT NULL,
                    value BLOB NOT NULL
                );
                CREATE INDEX IF NOT EXISTS events_kind_rev ON events (kind, rev);
                CREATE TABLE IF NOT EXISTS meta (
                    key TEXT PRIMARY KEY,
                    value INTEGER NOT NULL
                );
                INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0);
                PRAGMA user_version = \(schemaVersion);
                """
            )
        }
    }

    private static func loadCounters(_ connection: SQLiteConnection) throws -> Counters {
        let statement = try connection.statement("SELECT key, value FROM meta")
        defer { statement.reset() }
        var counters = Counters(revision: 0, compacted: 0)
        while try statement.step() {
            switch statement.text(0) {
            case "revision": counters.revision = statement.int64(1)
            case "compacted": counters.compacted = statement.int64(1)
            default: break
            }
        }
        return counters
    }

    /// Creates the database file owner-only before SQLite opens it; SQLite gives -wal and -shm the same mode.
    private static func createPrivateFile(_ path: String) throws {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw StoreError(code: .unavailable, message: "cannot create \(path): \(reason)")
        }
        closeDescriptor(descriptor)
        restrictPermissions(path)
    }

    /// Tightens the database and its -wal and -shm files to 0600, also when an older file was more open.
    private static func restrictPermissions(_ path: String) {
        for file in [path, path + "-wal", path + "-shm"] {
            _ = chmod(file, 0o600)
        }
    }
}

/// Closes a file descriptor; a free function because `SQLiteWriter.close()` would shadow the C call.
private func closeDescriptor(_ descriptor: Int32) {
    _ = close(descriptor)
}
