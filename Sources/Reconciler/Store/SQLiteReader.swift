import CSQLite
import Foundation
import NIOPosix
import SQLiteSupport
import Synchronization

/// Serves reads from a pool of query-only connections, so reads never wait for the writer.
///
/// In WAL mode each read transaction sees the snapshot of the last commit before it began, while the writer
/// keeps appending to the log. A connection is checked out for one call and returned afterwards; the pool grows
/// to the number of concurrent readers (bounded by the threads running them) and keeps at most `maxIdle`.
final class SQLiteReader: Sendable {
    /// One page of the event log, as read by a watcher catching up.
    struct EventPage: Sendable {
        /// Matching events with revision greater than the requested one, oldest first.
        var events: [StoreEvent]
        /// The revision up to which the log was scanned: every matching event up to it is in `events` or earlier.
        var cursor: Int64
    }

    private struct Pool {
        var idle: [GuardedSQLiteConnection] = []
        var closed = false
    }

    private static let maxIdle = 8
    private let path: String
    private let pool = Mutex(Pool())
    /// The threads reads block on: SQLite calls block, and must not hold Swift's cooperative threads.
    private let threads: NIOThreadPool

    init(path: String, threadCount: Int = max(2, ProcessInfo.processInfo.activeProcessorCount)) {
        self.path = path
        threads = NIOThreadPool(numberOfThreads: threadCount)
        threads.start()
    }

    /// Runs `read` on one of the reader's threads.
    func run<Result: Sendable>(_ read: @escaping @Sendable (SQLiteReader) throws -> Result) async throws -> Result {
        let closed = StoreError(code: .unavailable, message: "store is closed")
        guard !pool.withLock({ $0.closed }) else { throw closed }
        do {
            return try await threads.runIfActive { try read(self) }
        } catch is CancellationError where !Task.isCancelled {
            // The thread pool was shut down by `close()` while the read waited.
            throw closed
        }
    }

    /// Closes idle connections now and busy ones when they are returned; later reads fail with `unavailable`.
    func close() {
        let wasOpen = pool.withLock { !$0.closed }
        if wasOpen { threads.shutdownGracefully { _ in } }
        let idle = pool.withLock { pool in
            pool.closed = true
            defer { pool.idle.removeAll() }
            return pool.idle
        }
        for connection in idle {
            connection.close()
        }
    }

    /// The newest committed revision and the compacted revision.
    func revisions() throws -> (current: Int64, compacted: Int64) {
        try withConnection { try Self.revisions($0) }
    }

    func get(kind: String, name: String) throws -> StoredObject? {
        try withConnection { connection in
            let statement = try connection.statement(
                "SELECT create_rev, mod_rev, value FROM objects WHERE kind = ?1 AND name = ?2"
            )
            defer { statement.reset() }
            try statement.bind(1, kind)
            try statement.bind(2, name)
            guard try statement.step() else {
                return nil
            }
            return StoredObject(
                kind: kind,
                name: name,
                value: statement.data(2),
                createRevision: statement.int64(0),
                modRevision: statement.int64(1)
            )
        }
    }

    func list(kind: String?) throws -> (objects: [StoredObject], revision: Int64) {
        try withConnection { connection in
            // One read transaction, so the objects and the revision come from the same snapshot.
            try connection.transaction {
                let revision = try Self.revisions(connection).current
                let statement: SQLiteStatement
                if let kind {
                    statement = try connection.statement(
                        "SELECT kind, name, create_rev, mod_rev, value FROM objects WHERE kind = ?1 ORDER BY name"
                    )
                    try statement.bind(1, kind)
                } else {
                    statement = try connection.statement(
                        "SELECT kind, name, create_rev, mod_rev, value FROM objects ORDER BY name, kind"
                    )
                }
                defer { statement.reset() }
                var objects: [StoredObject] = []
                while try statement.step() {
                    objects.append(
                        StoredObject(
                            kind: statement.text(0),
                            name: statement.text(1),
                            value: statement.data(4),
                            createRevision: statement.int64(2),
                            modRevision: statement.int64(3)
                        )
                    )
                }
                return (objects, revision)
            }
        }
    }

    /// Up to `limit` events with revision > `after`, for one kind or all.
    ///
    /// Throws `compacted` when `after` is older than the compacted revision, checked in the same snapshot.
    func events(after: Int64, kind: String?, limit: Int) throws -> EventPage {
        try withConnection { connection in
            try connection.transaction {
                let revisions = try Self.revisions(connection)
                if after < revisions.compacted {
                    throw StoreError(
                        code: .compacted,
                        message: "revision \(after) has been compacted; oldest watchable revision is "
                            + "\(revisions.compacted)",
                        currentRevision: revisions.compacted
                    )
                }
                let columns = "SELECT rev, kind, name, type, create_rev, value FROM events"
                let statement: SQLiteStatement
                if let kind {
                    statement = try connection.statement(
                        "\(columns) WHERE kind = ?3 AND rev > ?1 ORDER BY rev LIMIT ?2"
                    )
                    try statement.bind(3, kind)
                } else {
                    statement = try connection.statement("\(columns) WHERE rev > ?1 ORDER BY rev LIMIT ?2")
                }
                defer { statement.reset() }
                try statement.bind(1, after)
                try statement.bind(2, Int64(limit))
                var events: [StoreEvent] = []
                while try statement.step() {
                    let revision = statement.int64(0)
                    let typeName = statement.text(3)
                    guard let type = StoreEvent.EventType(rawValue: typeName) else {
                        throw StoreError(
                            code: .unavailable,
                            message: "corrupt event log: revision \(revision) has type \(typeName)"
                        )
                    }
                    let object = StoredObject(
                        kind: statement.text(1),
                        name: statement.text(2),
                        value: statement.data(5),
                        createRevision: statement.int64(4),
                        modRevision: revision
                    )
                    events.append(StoreEvent(type: type, object: object, revision: revision))
                }
                // A short page means the log was read to the end of this snapshot.
                let cursor = events.count == limit ? (events.last?.revision ?? after) : max(after, revisions.current)
                return EventPage(events: events, cursor: cursor)
            }
        }
    }

    private static func revisions(_ connection: SQLiteConnection) throws -> (current: Int64, compacted: Int64) {
        let statement = try connection.statement("SELECT key, value FROM meta WHERE key IN ('revision', 'compacted')")
        defer { statement.reset() }
        var current: Int64 = 0
        var compacted: Int64 = 0
        while try statement.step() {
            switch statement.text(0) {
            case "revision": current = statement.int64(1)
            case "compacted": compacted = statement.int64(1)
            default: break
            }
        }
        return (current, compacted)
    }

    private func withConnection<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        do {
            let connection = try checkout()
            defer { checkin(connection) }
            return try connection.withConnection(body)
        } catch {
            throw SQLiteError.reported(error)
        }
    }

    private func checkout() throws -> GuardedSQLiteConnection {
        let idle = try pool.withLock { pool -> GuardedSQLiteConnection? in
            if pool.closed {
                throw StoreError(code: .unavailable, message: "store is closed")
            }
            return pool.idle.popLast()
        }
        if let idle {
            return idle
        }
        let connection = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READWRITE)
        try connection.execute("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON")
        return GuardedSQLiteConnection(connection)
    }

    private func checkin(_ connection: GuardedSQLiteConnection) {
        let kept = pool.withLock { pool in
            guard !pool.closed, pool.idle.count < Self.maxIdle else {
                return false
            }
            pool.idle.append(connection)
            return true
        }
        if !kept {
            connection.close()
        }
    }
}
