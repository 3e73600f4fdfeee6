import CSQLite
import Foundation
import Synchronization

/// Tells SQLite to copy bound text and blobs, since Swift buffers do not outlive the bind call.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A single SQLite connection with a cache of prepared statements; not thread-safe.
///
/// The handle is opened with SQLITE_OPEN_NOMUTEX, so every use must be serialised by the owner;
/// `GuardedSQLiteConnection` does that with a `Mutex`.
public final class SQLiteConnection {
    private var db: OpaquePointer?
    private var statements: [String: SQLiteStatement] = [:]

    /// Opens the database file at `path` with the given `sqlite3_open_v2` flags.
    public init(path: String, flags: Int32) throws {
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(handle)
            throw SQLiteError(rc, "cannot open \(path): \(message)")
        }
        db = handle
        sqlite3_extended_result_codes(handle, 1)
    }

    deinit {
        close()
    }

    /// Finalizes all statements and closes the handle; later calls fail with `unavailable`.
    public func close() {
        for statement in statements.values {
            statement.finalize()
        }
        statements.removeAll()
        if let db {
            sqlite3_close_v2(db)
        }
        db = nil
    }

    /// Runs one or more SQL statements that return no rows the caller needs.
    public func execute(_ sql: String) throws {
        let db = try handle()
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(errorMessage)
            throw SQLiteError(rc, "\(sql): \(message)")
        }
    }

    /// Returns the cached prepared statement for `sql`, preparing it on first use.
    ///
    /// Callers bind, step, and `defer { statement.reset() }` so the statement is ready for its next user.
    public func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = statements[sql] {
            return cached
        }
        let db = try handle()
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else {
            sqlite3_finalize(raw)
            throw SQLiteError(rc, "prepare \(sql): \(String(cString: sqlite3_errmsg(db)))")
        }
        let statement = SQLiteStatement(raw, db: db)
        statements[sql] = statement
        return statement
    }

    /// Sets one of SQLite's run-time limits, e.g. `SQLITE_LIMIT_LENGTH`.
    public func setLimit(_ limit: Int32, _ value: Int32) {
        if let db {
            sqlite3_limit(db, limit, value)
        }
    }

    /// Calls `hook` after each commit with the WAL's length in frames (`sqlite3_wal_hook`); it replaces SQLite's own
    /// checkpoints after commits.
    func setWALHook(
        _ context: UnsafeMutableRawPointer,
        _ hook: @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32
    ) throws {
        sqlite3_wal_hook(try handle(), hook, context)
    }

    /// Runs `body` with the raw handle, for the C calls this type does not wrap; nil once closed.
    func withHandle<T>(_ body: (OpaquePointer) -> T) -> T? {
        db.map(body)
    }

    /// Whether a transaction is open, e.g. after a failed ROLLBACK.
    public var isInTransaction: Bool {
        db.map { sqlite3_get_autocommit($0) == 0 } ?? false
    }

    /// Runs a statement that takes no parameters and returns no rows, prepared once: BEGIN and COMMIT run with every
    /// transaction, and parsing them each time was a visible share of a busy event pipeline's profile.
    private func run(_ sql: String) throws {
        let prepared = try statement(sql)
        defer { prepared.reset() }
        _ = try prepared.step()
    }

    /// Runs `body` inside BEGIN…COMMIT, rolling back when it throws.
    public func transaction<T>(_ begin: String = "BEGIN", _ body: () throws -> T) throws -> T {
        if isInTransaction {
            try? execute("ROLLBACK")
        }
        try run(begin)
        do {
            let result = try body()
            try run("COMMIT")
            return result
        } catch {
            if isInTransaction {
                try? execute("ROLLBACK")
            }
            throw error
        }
    }

    private func handle() throws -> OpaquePointer {
        guard let db else {
            throw SQLiteError.closed
        }
        return db
    }
}

/// A prepared statement owned by a `SQLiteConnection`; bind parameters are 1-based, columns 0-based.
public final class SQLiteStatement {
    private let raw: OpaquePointer
    private let db: OpaquePointer
    private var finalized = false

    fileprivate init(_ raw: OpaquePointer, db: OpaquePointer) {
        self.raw = raw
        self.db = db
    }

    fileprivate func finalize() {
        if !finalized {
            sqlite3_finalize(raw)
            finalized = true
        }
    }

    /// Makes the statement ready for the next use and drops references to bound values.
    public func reset() {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
    }

    public func bind(_ index: Int32, _ value: Int64) throws {
        try check(sqlite3_bind_int64(raw, index, value), "bind")
    }

    public func bind(_ index: Int32, _ value: Int64?) throws {
        if let value {
            try bind(index, value)
        } else {
            try check(sqlite3_bind_null(raw, index), "bind")
        }
    }

    public func bind(_ index: Int32, _ value: String) throws {
        var value = value
        // withUTF8 passes an explicit length, so names with embedded NULs are stored whole.
        let rc = value.withUTF8 { utf8 -> Int32 in
            guard let base = utf8.baseAddress, !utf8.isEmpty else {
                return sqlite3_bind_text(raw, index, "", 0, sqliteTransient)
            }
            return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                sqlite3_bind_text64(raw, index, $0, UInt64(utf8.count), sqliteTransient, UInt8(SQLITE_UTF8))
            }
        }
        try check(rc, "bind")
    }

    public func bind(_ index: Int32, _ value: Data) throws {
        let rc = value.withUnsafeBytes { bytes -> Int32 in
            // A nil pointer would bind NULL, so empty values are bound as a zero-length blob.
            guard let base = bytes.baseAddress, !bytes.isEmpty else {
                return sqlite3_bind_zeroblob(raw, index, 0)
            }
            return sqlite3_bind_blob64(raw, index, base, UInt64(bytes.count), sqliteTransient)
        }
        try check(rc, "bind")
    }

    /// Advances to the next row; returns false when the statement is done.
    public func step() throws -> Bool {
        let rc = sqlite3_step(raw)
        switch rc {
        case SQLITE_ROW:
            return true
        case SQLITE_DONE:
            return false
        default:
            throw SQLiteError(rc, "step \(String(cString: sqlite3_sql(raw))): \(String(cString: sqlite3_errmsg(db)))")
        }
    }

    /// Whether the column holds NULL in the current row.
    public func isNull(_ column: Int32) -> Bool {
        sqlite3_column_type(raw, column) == SQLITE_NULL
    }

    public func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(raw, column)
    }

    public func text(_ column: Int32) -> String {
        guard let bytes = sqlite3_column_text(raw, column) else {
            return ""
        }
        let count = Int(sqlite3_column_bytes(raw, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    public func data(_ column: Int32) -> Data {
        guard let bytes = sqlite3_column_blob(raw, column) else {
            return Data()
        }
        return Data(bytes: bytes, count: Int(sqlite3_column_bytes(raw, column)))
    }

    private func check(_ rc: Int32, _ context: String) throws {
        if rc != SQLITE_OK {
            throw SQLiteError(
                rc,
                "\(context) \(String(cString: sqlite3_sql(raw))): \(String(cString: sqlite3_errmsg(db)))"
            )
        }
    }
}

/// A failed SQLite call: its result code, for deciding what to retry, and what went wrong.
public struct SQLiteError: Error, CustomStringConvertible {
    /// The (extended) result code, e.g. SQLITE_TOOBIG; SQLITE_MISUSE once the connection is closed.
    public let resultCode: Int32
    /// The statement or call that failed and `sqlite3_errmsg`.
    public let message: String
    /// Whether the connection had been closed, rather than SQLite failing.
    public let isClosed: Bool

    public init(_ resultCode: Int32, _ message: String) {
        self.resultCode = resultCode
        self.message = message
        self.isClosed = false
    }

    private init(closed: Void) {
        resultCode = SQLITE_MISUSE
        message = "store is closed"
        isClosed = true
    }

    /// The error for any use of a connection after ``SQLiteConnection/close()``.
    public static let closed = SQLiteError(closed: ())

    public var description: String { isClosed ? message : "sqlite: \(message) (code \(resultCode))" }
}

/// A `SQLiteConnection` that may be shared across threads: every use holds its mutex.
public final class GuardedSQLiteConnection: Sendable {
    private let connection: Mutex<SQLiteConnection?>

    public init(_ connection: sending SQLiteConnection) {
        self.connection = Mutex(connection)
    }

    /// Runs `body` with exclusive use of the connection; fails with `unavailable` once closed.
    public func withConnection<T: Sendable>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try connection.withLock { connection in
            guard let connection else {
                throw SQLiteError.closed
            }
            return try body(connection)
        }
    }

    /// Closes the connection, waiting for a current user to finish.
    public func close() {
        connection.withLock { connection in
            connection?.close()
            connection = nil
        }
    }
}
