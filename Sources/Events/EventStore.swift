import CSQLite
import Foundation
import Resources
import SQLiteSupport
import Synchronization

/// The pipeline's durable state in one SQLite file (WAL): the intake queue, the outbox, dedup keys, held
/// aggregates and execution records.
///
/// Every method is one transaction, so a process killed at any moment leaves either the state before a step or the
/// state after it: an event is in the queue until the transaction that writes its deliveries also removes it, and
/// a delivery stays in the outbox until the transaction that records its success removes it.
public final class EventStore: Sendable {
    /// An event waiting in the intake queue.
    public struct QueuedEvent: Sendable, Equatable {
        public var sequence: Int64
        public var id: String
        public var receivedAt: Int64
        public var body: [UInt8]
        /// For an event a runner handed up: each route's actions still due; nil for an event taken in here.
        public var due: [EventHandOff.Due]?
    }

    /// A delivery to add, before it has a row.
    public struct NewDelivery: Sendable {
        public var eventID: String
        public var route: String
        public var action: String
        public var message: RenderedMessage
        public var receivedAt: Int64
        public var dedupKey: String?
        public var dedupExpiry: Int64?
        /// Handed upstream once this delivery has finished (the last runner action of a serialized mixed route).
        public var thenHandOff: EventHandOff?

        public init(
            eventID: String, route: String, action: String, message: RenderedMessage, receivedAt: Int64,
            dedupKey: String? = nil, dedupExpiry: Int64? = nil, thenHandOff: EventHandOff? = nil
        ) {
            self.thenHandOff = thenHandOff
            self.eventID = eventID
            self.route = route
            self.action = action
            self.message = message
            self.receivedAt = receivedAt
            self.dedupKey = dedupKey
            self.dedupExpiry = dedupExpiry
        }
    }

    /// One step of routing: events taken off the queue and what they became.
    public struct RoutingStep: Sendable {
        /// Queue sequences consumed.
        public var consumed: [Int64] = []
        /// Delivery groups: each group is one route match; serialized groups run one after another.
        public var groups: [(deliveries: [NewDelivery], serialized: Bool)] = []
        /// Messages held for aggregation.
        public var held: [(route: String, item: AggregateBuffer.Item)] = []
        /// Held rows released (delivered as one message by a group of this step).
        public var releasedRoutes: [String] = []
        /// Events to hand upstream.
        public var handOffs: [EventHandOff] = []

        public init() {}
    }

    /// What one finished attempt changed.
    public enum Outcome: Sendable, Equatable {
        case delivered
        case retry(dueAt: Int64)
        case failed

        /// Whether the delivery is over (delivered or given up).
        public var isFinal: Bool {
            if case .retry = self { return false }
            return true
        }
    }

    /// What completing an attempt produced.
    public struct Completion: Sendable {
        /// The next delivery of a serialized route, now ready.
        public var next: Delivery?
        /// The dedup key recorded, when this completed the event's deliveries on its route.
        public var recordedDedupKey: (route: String, key: String, expiresAt: Int64)?
    }

    private let connection: GuardedSQLiteConnection
    /// The API's reads of execution records, on a connection of their own: in WAL mode a reader sees every commit
    /// and never waits for the writer, nor the writer for it. Looking up one record by name reads the whole table
    /// (records have no index but their number: 75 ms for 400,000 with a warm cache), which on the writer's
    /// connection held intake meanwhile.
    private let reader: GuardedSQLiteConnection
    private let checkpointer: WALCheckpointer
    /// The number of the last outbox row written by this process; nil until the first. Rows are numbered here so
    /// that no number comes back while the process runs: SQLite numbers a new row one past the largest left, so
    /// the number of the newest row came back as soon as it was delivered and deleted, while the pipeline still held
    /// that number as in flight, and the new row was taken for the old one and never queued.
    private let lastOutboxRow = Mutex<Int64?>(nil)
    /// See ``lastReportedRow(_:)``; nil until first read.
    private let lastReported = Mutex<Int64?>(nil)

    /// Opens or creates the file at `path`; `synchronous` FULL also survives power loss, NORMAL a crash.
    public init(path: String, fullSync: Bool = false) throws {
        let connection = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        try connection.execute("PRAGMA busy_timeout = 5000")
        try connection.execute("PRAGMA journal_mode = WAL")
        try connection.execute(fullSync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
        try connection.execute(
            """
            CREATE TABLE IF NOT EXISTS events(
                seq INTEGER PRIMARY KEY, id TEXT NOT NULL, received INTEGER NOT NULL, body BLOB NOT NULL, due TEXT);
            CREATE TABLE IF NOT EXISTS outbox(
                row INTEGER PRIMARY KEY, delivery_id TEXT NOT NULL, event_id TEXT NOT NULL, route TEXT NOT NULL,
                action TEXT NOT NULL, title TEXT, body BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                due INTEGER NOT NULL DEFAULT 0, ready INTEGER NOT NULL, failed INTEGER NOT NULL DEFAULT 0,
                dedup_key TEXT, dedup_expiry INTEGER, next_row INTEGER, received INTEGER NOT NULL,
                then_hand_off TEXT);
            CREATE TABLE IF NOT EXISTS handoffs(row INTEGER PRIMARY KEY, handoff TEXT NOT NULL);
            DROP INDEX IF EXISTS outbox_event;
            CREATE INDEX IF NOT EXISTS outbox_dedup ON outbox(event_id, route) WHERE dedup_key IS NOT NULL;
            CREATE INDEX IF NOT EXISTS outbox_action ON outbox(action, ready, failed);
            CREATE INDEX IF NOT EXISTS outbox_failed ON outbox(received) WHERE failed = 1;
            CREATE TABLE IF NOT EXISTS dedup(
                route TEXT NOT NULL, key TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY(route, key)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS held(
                row INTEGER PRIMARY KEY, route TEXT NOT NULL, event_id TEXT NOT NULL, body BLOB NOT NULL,
                held_at INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS executions(
                row INTEGER PRIMARY KEY, time INTEGER NOT NULL, event_id TEXT NOT NULL, route TEXT NOT NULL,
                action TEXT NOT NULL, location TEXT NOT NULL, attempt INTEGER NOT NULL, result TEXT NOT NULL,
                duration_ms INTEGER NOT NULL, error TEXT, delivery_id TEXT NOT NULL,
                reported INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS progress(name TEXT PRIMARY KEY, row INTEGER NOT NULL) WITHOUT ROWID;
            DROP INDEX IF EXISTS executions_time;
            """)
        // The log is copied into the file on a thread of its own: a commit that copied it stopped intake and
        // deliveries for 80 ms every second under load.
        self.checkpointer = try WALCheckpointer(path: path, writer: connection)
        self.connection = GuardedSQLiteConnection(connection)
        let reader = try SQLiteConnection(path: path, flags: SQLITE_OPEN_READONLY)
        try reader.execute("PRAGMA busy_timeout = 5000")
        self.reader = GuardedSQLiteConnection(reader)
    }

    deinit { close() }

    /// Closes the file; later calls fail.
    public func close() {
        // The writer's connection last: the last to close copies the whole log into the file and removes it.
        reader.close()
        checkpointer.close()
        connection.close()
    }

    // MARK: Intake queue

    /// An event to write to the queue.
    public struct NewEvent: Sendable {
        public var id: String
        public var receivedAt: Int64
        public var body: [UInt8]
        public var due: [EventHandOff.Due]?

        public init(id: String, receivedAt: Int64, body: [UInt8], due: [EventHandOff.Due]? = nil) {
            self.id = id
            self.receivedAt = receivedAt
            self.body = body
            self.due = due
        }
    }

    /// Writes events to the queue in one transaction; they are durable when this returns.
    public func enqueue(_ events: [NewEvent]) throws {
        _ = try write(Write(queued: events), makeDeliveryID: { _, _, _ in "" })
    }

    private static func insert(_ events: [NewEvent], into db: SQLiteConnection) throws {
        let statement = try db.statement("INSERT INTO events(id, received, body, due) VALUES(?, ?, ?, ?)")
        for event in events {
            defer { statement.reset() }
            try statement.bind(1, event.id)
            try statement.bind(2, event.receivedAt)
            try statement.bind(3, Data(event.body))
            try bindOptional(
                statement, 4, try event.due.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) })
            _ = try statement.step()
        }
    }

    /// The oldest queued events, at most `limit`.
    public func queuedEvents(limit: Int) throws -> [QueuedEvent] {
        try connection.withConnection { db in
            let statement = try db.statement("SELECT seq, id, received, body, due FROM events ORDER BY seq LIMIT ?")
            defer { statement.reset() }
            try statement.bind(1, Int64(limit))
            var events: [QueuedEvent] = []
            while try statement.step() {
                let due = statement.isNull(4)
                    ? nil : try? JSONDecoder().decode([EventHandOff.Due].self, from: Data(statement.text(4).utf8))
                events.append(
                    QueuedEvent(
                        sequence: statement.int64(0), id: statement.text(1), receivedAt: statement.int64(2),
                        body: Array(statement.data(3)), due: due))
            }
            return events
        }
    }

    /// How many events are queued and how many deliveries are pending (not given up).
    public func depths() throws -> (events: Int, outbox: Int) {
        try connection.withConnection { db in
            (try Self.count(db, "SELECT COUNT(*) FROM events"),
             try Self.count(db, "SELECT COUNT(*) FROM outbox WHERE failed = 0"))
        }
    }

    // MARK: Routing

    /// Applies one routing step in one transaction and returns the deliveries that are ready now.
    public func commit(
        _ step: RoutingStep, makeDeliveryID: (_ eventID: String, _ route: String, _ action: String) -> String
    ) throws -> [Delivery] {
        try write(Write(step: step), makeDeliveryID: makeDeliveryID).ready
    }

    /// What one transaction of the pipeline's writer holds: attempts finished, records a runner reported, events
    /// queued for the router, and a routing step. One commit for all costs less than one each: the outbox rows it
    /// adds and the rows it removes share pages.
    public struct Write: Sendable {
        public var finished: [FinishedAttempt]
        public var reported: [ExecutionRecord]
        public var queued: [NewEvent]
        public var step: RoutingStep?

        public init(
            finished: [FinishedAttempt] = [], reported: [ExecutionRecord] = [], queued: [NewEvent] = [],
            step: RoutingStep? = nil
        ) {
            self.finished = finished
            self.reported = reported
            self.queued = queued
            self.step = step
        }
    }

    /// Applies `write` in one transaction: the completions of its finished attempts, in their order, and the
    /// deliveries of its step that are ready now.
    public func write(
        _ write: Write, makeDeliveryID: (_ eventID: String, _ route: String, _ action: String) -> String
    ) throws -> (completions: [Completion], ready: [Delivery]) {
        try connection.withConnection { db in
            try db.transaction {
                let completions = try write.finished.map { try Self.apply($0, in: db) }
                for record in write.reported { try Self.insert(record, reported: true, into: db) }
                try Self.insert(write.queued, into: db)
                let ready = try write.step.map { try insert($0, into: db, makeDeliveryID: makeDeliveryID) } ?? []
                return (completions, ready)
            }
        }
    }

    private func insert(
        _ step: RoutingStep, into db: SQLiteConnection,
        makeDeliveryID: (_ eventID: String, _ route: String, _ action: String) -> String
    ) throws -> [Delivery] {
        let remove = try db.statement("DELETE FROM events WHERE seq = ?")
        for sequence in step.consumed {
            defer { remove.reset() }
            try remove.bind(1, sequence)
            _ = try remove.step()
        }
        for route in step.releasedRoutes {
            let release = try db.statement("DELETE FROM held WHERE route = ?")
            defer { release.reset() }
            try release.bind(1, route)
            _ = try release.step()
        }
        let hold = try db.statement("INSERT INTO held(route, event_id, body, held_at) VALUES(?, ?, ?, ?)")
        for (route, item) in step.held {
            defer { hold.reset() }
            try hold.bind(1, route)
            try hold.bind(2, item.eventID)
            try hold.bind(3, Data(item.message))
            try hold.bind(4, item.heldAt)
            _ = try hold.step()
        }
        let handOff = try db.statement("INSERT INTO handoffs(handoff) VALUES(?)")
        for item in step.handOffs {
            defer { handOff.reset() }
            try handOff.bind(1, String(decoding: try JSONEncoder().encode(item), as: UTF8.self))
            _ = try handOff.step()
        }
        var row = try lastOutboxRow.withLock { last in
            try last ?? Int64(Self.count(db, "SELECT MAX(row) FROM outbox"))
        }
        defer { lastOutboxRow.withLock { $0 = row } }
        var ready: [Delivery] = []
        for group in step.groups {
            // A serialized group is inserted last first, so each row knows the row that waits for it.
            var next: Int64?
            var inserted: [Delivery] = []
            for (index, new) in group.deliveries.enumerated().reversed() {
                let isReady = !group.serialized || index == 0
                var delivery = Delivery(
                    rowID: 0, deliveryID: makeDeliveryID(new.eventID, new.route, new.action), eventID: new.eventID,
                    route: new.route, action: new.action, message: new.message, dedupKey: new.dedupKey,
                    dedupExpiry: new.dedupExpiry, nextRowID: group.serialized ? next : nil,
                    receivedAt: new.receivedAt)
                row += 1
                delivery.rowID = row
                try Self.insert(delivery, ready: isReady, thenHandOff: new.thenHandOff, into: db)
                next = delivery.rowID
                if isReady { inserted.append(delivery) }
            }
            ready += inserted.reversed()
        }
        return ready
    }

    private static func insert(
        _ delivery: Delivery, ready: Bool, thenHandOff: EventHandOff?, into db: SQLiteConnection
    ) throws {
        let statement = try db.statement(
            """
            INSERT INTO outbox(delivery_id, event_id, route, action, title, body, ready, dedup_key, dedup_expiry,
                next_row, received, then_hand_off, row) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        defer { statement.reset() }
        try statement.bind(1, delivery.deliveryID)
        try statement.bind(2, delivery.eventID)
        try statement.bind(3, delivery.route)
        try statement.bind(4, delivery.action)
        try bindOptional(statement, 5, delivery.message.title)
        try statement.bind(6, Data(delivery.message.body))
        try statement.bind(7, Int64(ready ? 1 : 0))
        try bindOptional(statement, 8, delivery.dedupKey)
        try statement.bind(9, delivery.dedupExpiry)
        try statement.bind(10, delivery.nextRowID)
        try statement.bind(11, delivery.receivedAt)
        try bindOptional(
            statement, 12, try thenHandOff.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) })
        try statement.bind(13, delivery.rowID)
        _ = try statement.step()
    }

    // MARK: Outbox

    /// The actions that have ready deliveries, for loading the outbox at start.
    public func actionsWithReadyDeliveries() throws -> [String] {
        try connection.withConnection { db in
            let statement = try db.statement("SELECT DISTINCT action FROM outbox WHERE ready = 1 AND failed = 0")
            defer { statement.reset() }
            var actions: [String] = []
            while try statement.step() { actions.append(statement.text(0)) }
            return actions
        }
    }

    /// Ready deliveries of `action`, oldest first, skipping rows in `excluding`, at most `limit`.
    public func readyDeliveries(action: String, limit: Int, excluding: Set<Int64>) throws -> [Delivery] {
        try connection.withConnection { db in
            let statement = try db.statement(
                """
                SELECT \(Self.deliveryColumns) FROM outbox WHERE action = ? AND ready = 1 AND failed = 0
                ORDER BY row LIMIT ?
                """)
            defer { statement.reset() }
            try statement.bind(1, action)
            try statement.bind(2, Int64(limit + excluding.count))
            var deliveries: [Delivery] = []
            while try statement.step(), deliveries.count < limit {
                let delivery = Self.delivery(statement)
                if !excluding.contains(delivery.rowID) { deliveries.append(delivery) }
            }
            return deliveries
        }
    }

    static let deliveryColumns =
        "row, delivery_id, event_id, route, action, title, body, attempts, due, dedup_key, dedup_expiry, next_row, received"

    private static func delivery(_ statement: SQLiteStatement) -> Delivery {
        Delivery(
            rowID: statement.int64(0), deliveryID: statement.text(1), eventID: statement.text(2),
            route: statement.text(3), action: statement.text(4),
            message: RenderedMessage(
                title: statement.isNull(5) ? nil : statement.text(5), body: Array(statement.data(6))),
            attempts: Int(statement.int64(7)), dueAt: statement.int64(8),
            dedupKey: statement.isNull(9) ? nil : statement.text(9),
            dedupExpiry: statement.isNull(10) ? nil : statement.int64(10),
            nextRowID: statement.isNull(11) ? nil : statement.int64(11), receivedAt: statement.int64(12))
    }

    /// One finished attempt, as the pipeline records it.
    public struct FinishedAttempt: Sendable {
        public var delivery: Delivery
        public var outcome: Outcome
        public var execution: ExecutionRecord

        public init(delivery: Delivery, outcome: Outcome, execution: ExecutionRecord) {
            self.delivery = delivery
            self.outcome = outcome
            self.execution = execution
        }
    }

    /// Records one finished attempt and applies its outcome, in one transaction.
    public func complete(_ delivery: Delivery, outcome: Outcome, execution: ExecutionRecord) throws -> Completion {
        try complete([FinishedAttempt(delivery: delivery, outcome: outcome, execution: execution)])[0]
    }

    /// Records finished attempts and applies their outcomes in one transaction (group commit): either all of them
    /// are durable or none is. The completions are in the order of `attempts`.
    public func complete(_ attempts: [FinishedAttempt]) throws -> [Completion] {
        try write(Write(finished: attempts), makeDeliveryID: { _, _, _ in "" }).completions
    }

    private static func apply(_ attempt: FinishedAttempt, in db: SQLiteConnection) throws -> Completion {
        let delivery = attempt.delivery
        try insert(attempt.execution, into: db)
        var completion = Completion()
        if attempt.outcome.isFinal {
            // A finished delivery that carries a hand-off passes it on in the same transaction.
            let handOff = try db.statement(
                """
                INSERT INTO handoffs(handoff) SELECT then_hand_off FROM outbox
                WHERE row = ? AND then_hand_off IS NOT NULL
                """)
            defer { handOff.reset() }
            try handOff.bind(1, delivery.rowID)
            _ = try handOff.step()
        }
        switch attempt.outcome {
        case .retry(let dueAt):
            let update = try db.statement("UPDATE outbox SET attempts = ?, due = ? WHERE row = ?")
            defer { update.reset() }
            try update.bind(1, Int64(delivery.attempts + 1))
            try update.bind(2, dueAt)
            try update.bind(3, delivery.rowID)
            _ = try update.step()
            return completion
        case .failed:
            let update = try db.statement("UPDATE outbox SET attempts = ?, failed = 1 WHERE row = ?")
            defer { update.reset() }
            try update.bind(1, Int64(delivery.attempts + 1))
            try update.bind(2, delivery.rowID)
            _ = try update.step()
        case .delivered:
            let remove = try db.statement("DELETE FROM outbox WHERE row = ?")
            defer { remove.reset() }
            try remove.bind(1, delivery.rowID)
            _ = try remove.step()
            if let key = delivery.dedupKey, let expiry = delivery.dedupExpiry {
                completion.recordedDedupKey = try recordDedupKey(key, expiry: expiry, of: delivery, in: db)
            }
        }
        // The next action of a serialized route starts once this one has finished, delivered or not.
        if let next = delivery.nextRowID {
            let update = try db.statement(
                "UPDATE outbox SET ready = 1 WHERE row = ? RETURNING \(Self.deliveryColumns)")
            defer { update.reset() }
            try update.bind(1, next)
            if try update.step() { completion.next = Self.delivery(update) }
        }
        return completion
    }

    /// Records the route's dedup key once no delivery of the event on the route is left in the outbox.
    private static func recordDedupKey(
        _ key: String, expiry: Int64, of delivery: Delivery, in db: SQLiteConnection
    ) throws -> (route: String, key: String, expiresAt: Int64)? {
        // Every delivery of one route match carries the route's key: only routes with dedup pay for this index.
        let remaining = try db.statement(
            "SELECT COUNT(*) FROM outbox WHERE event_id = ? AND route = ? AND dedup_key IS NOT NULL")
        defer { remaining.reset() }
        try remaining.bind(1, delivery.eventID)
        try remaining.bind(2, delivery.route)
        guard try remaining.step(), remaining.int64(0) == 0 else { return nil }
        let record = try db.statement("INSERT OR REPLACE INTO dedup(route, key, expires) VALUES(?, ?, ?)")
        defer { record.reset() }
        try record.bind(1, delivery.route)
        try record.bind(2, key)
        try record.bind(3, expiry)
        _ = try record.step()
        return (delivery.route, key, expiry)
    }

    // MARK: Upstream

    /// Hand-offs waiting for the controller, oldest first.
    public func pendingHandOffs(limit: Int) throws -> [(row: Int64, handOff: EventHandOff)] {
        try connection.withConnection { db in
            let statement = try db.statement("SELECT row, handoff FROM handoffs ORDER BY row LIMIT ?")
            defer { statement.reset() }
            try statement.bind(1, Int64(limit))
            var pending: [(Int64, EventHandOff)] = []
            while try statement.step() {
                if let handOff = try? JSONDecoder().decode(EventHandOff.self, from: Data(statement.text(1).utf8)) {
                    pending.append((statement.int64(0), handOff))
                }
            }
            return pending
        }
    }

    /// Removes hand-offs the controller has taken, up to and including `row`.
    public func removeHandOffs(through row: Int64) throws {
        try connection.withConnection { db in
            let statement = try db.statement("DELETE FROM handoffs WHERE row <= ?")
            defer { statement.reset() }
            try statement.bind(1, row)
            _ = try statement.step()
        }
    }

    /// Execution records not yet reported upstream, oldest first.
    public func unreportedExecutions(limit: Int) throws -> [ExecutionRecord] {
        try connection.withConnection { db in
            let statement = try db.statement(
                """
                SELECT \(Self.executionColumns) FROM executions WHERE row > ? AND reported = 0 ORDER BY row LIMIT ?
                """)
            defer { statement.reset() }
            try statement.bind(1, try lastReportedRow(db))
            try statement.bind(2, Int64(limit))
            var records: [ExecutionRecord] = []
            while try statement.step() { records.append(Self.execution(statement)) }
            return records
        }
    }

    /// Marks execution records as reported, up to and including `sequence`: one row of `progress`, not a flag on
    /// each record (setting a report's 1,000 flags wrote every page the records were on a second time).
    public func markReported(through sequence: Int64) throws {
        try connection.withConnection { db in
            let statement = try db.statement(
                """
                INSERT INTO progress(name, row) VALUES('reported', ?1)
                ON CONFLICT(name) DO UPDATE SET row = max(row, excluded.row)
                """)
            defer { statement.reset() }
            try statement.bind(1, sequence)
            _ = try statement.step()
            lastReported.withLock { $0 = max($0 ?? 0, sequence) }
        }
    }

    /// The last record reported upstream: records are reported in the order they were written, so those after it
    /// are the ones left, and a runner's report reads only them (it read every retained record, up to 100,000, to
    /// find them, twice per report, while intake waited for the connection).
    private func lastReportedRow(_ db: SQLiteConnection) throws -> Int64 {
        try lastReported.withLock { last in
            if let last { return last }
            // A file last written by a version that flagged each record has no progress row: every record up to
            // the first one not flagged, or all of them.
            let found = Int64(
                try Self.count(
                    db,
                    """
                    SELECT COALESCE((SELECT row FROM progress WHERE name = 'reported'),
                        (SELECT MIN(row) - 1 FROM executions WHERE reported = 0),
                        (SELECT MAX(row) FROM executions), 0)
                    """))
            last = found
            return found
        }
    }

    // MARK: Dedup and aggregation

    /// Every dedup key whose window has not ended at `now`, by route.
    public func dedupWindows(now: Int64) throws -> [String: DedupWindow] {
        try connection.withConnection { db in
            let prune = try db.statement("DELETE FROM dedup WHERE expires <= ?")
            defer { prune.reset() }
            try prune.bind(1, now)
            _ = try prune.step()
            let statement = try db.statement("SELECT route, key, expires FROM dedup")
            defer { statement.reset() }
            var windows: [String: DedupWindow] = [:]
            while try statement.step() {
                windows[statement.text(0), default: DedupWindow()].record(
                    statement.text(1), expiresAt: statement.int64(2))
            }
            return windows
        }
    }

    /// Removes dedup keys whose window has ended.
    public func removeDedupKeys(route: String, keys: [String]) throws {
        try connection.withConnection { db in
            let statement = try db.statement("DELETE FROM dedup WHERE route = ? AND key = ?")
            for key in keys {
                defer { statement.reset() }
                try statement.bind(1, route)
                try statement.bind(2, key)
                _ = try statement.step()
            }
        }
    }

    /// Everything held for aggregation, by route, oldest first.
    public func heldItems() throws -> [String: [AggregateBuffer.Item]] {
        try connection.withConnection { db in
            let statement = try db.statement("SELECT route, event_id, body, held_at FROM held ORDER BY row")
            defer { statement.reset() }
            var held: [String: [AggregateBuffer.Item]] = [:]
            while try statement.step() {
                held[statement.text(0), default: []].append(
                    AggregateBuffer.Item(
                        eventID: statement.text(1), message: Array(statement.data(2)), heldAt: statement.int64(3)))
            }
            return held
        }
    }

    // MARK: Executions

    private static func insert(_ record: ExecutionRecord, reported: Bool = false, into db: SQLiteConnection) throws {
        let statement = try db.statement(
            """
            INSERT INTO executions(time, event_id, route, action, location, attempt, result, duration_ms, error,
                delivery_id, reported) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        defer { statement.reset() }
        try statement.bind(1, record.time)
        try statement.bind(2, record.eventID)
        try statement.bind(3, record.route)
        try statement.bind(4, record.action)
        try statement.bind(5, record.location)
        try statement.bind(6, Int64(record.attempt))
        try statement.bind(7, record.result.rawValue)
        try statement.bind(8, record.durationMilliseconds)
        try bindOptional(statement, 9, record.error)
        try statement.bind(10, record.deliveryID)
        try statement.bind(11, Int64(reported ? 1 : 0))
        _ = try statement.step()
    }

    /// The newest execution records, newest first, optionally of one route or action.
    public func executions(route: String? = nil, action: String? = nil, limit: Int = 500) throws -> [ExecutionRecord] {
        try reader.withConnection { db in
            let statement = try db.statement(
                """
                SELECT \(Self.executionColumns) FROM executions
                WHERE (?1 IS NULL OR route = ?1) AND (?2 IS NULL OR action = ?2) ORDER BY row DESC LIMIT ?3
                """)
            defer { statement.reset() }
            try Self.bindOptional(statement, 1, route)
            try Self.bindOptional(statement, 2, action)
            try statement.bind(3, Int64(limit))
            var records: [ExecutionRecord] = []
            while try statement.step() { records.append(Self.execution(statement)) }
            return records
        }
    }

    /// The record of an `Execution` object's name (see ``ExecutionRecord/name``), or nil.
    public func execution(named name: String) throws -> ExecutionRecord? {
        guard let dash = name.lastIndex(of: "-"), let attempt = Int64(name[name.index(after: dash)...]) else {
            return nil
        }
        return try reader.withConnection { db in
            let statement = try db.statement(
                """
                SELECT \(Self.executionColumns) FROM executions WHERE delivery_id = ? AND attempt = ?
                ORDER BY row DESC LIMIT 1
                """)
            defer { statement.reset() }
            try statement.bind(1, String(name[..<dash]))
            try statement.bind(2, attempt)
            return try statement.step() ? Self.execution(statement) : nil
        }
    }

    static let executionColumns =
        "time, event_id, route, action, location, attempt, result, duration_ms, error, delivery_id, row"

    private static func execution(_ statement: SQLiteStatement) -> ExecutionRecord {
        ExecutionRecord(
            sequence: statement.int64(10), time: statement.int64(0), eventID: statement.text(1),
            route: statement.text(2), action: statement.text(3), location: statement.text(4),
            attempt: Int(statement.int64(5)), result: ExecutionRecord.Result(rawValue: statement.text(6)) ?? .failed,
            durationMilliseconds: statement.int64(7), error: statement.isNull(8) ? nil : statement.text(8),
            deliveryID: statement.text(9))
    }

    /// Two subqueries: SQLite looks up a lone min() or max() in the key, but `min(row), max(row)` scans the whole
    /// table (up to 245 ms with 400,000 records, holding the connection, once a minute).
    static let executionRowsQuery = "SELECT (SELECT min(row) FROM executions), (SELECT max(row) FROM executions)"

    /// The rows of the oldest and newest execution records, or nil when there are none.
    public func executionRows() throws -> ClosedRange<Int64>? {
        try connection.withConnection { db in
            let statement = try db.statement(Self.executionRowsQuery)
            defer { statement.reset() }
            guard try statement.step(), !statement.isNull(0) else { return nil }
            return statement.int64(0)...statement.int64(1)
        }
    }

    /// One step of retention over the execution records in `rows`: drops those older than `before` and those
    /// numbered at or below `lastDropped`. Steps are short so that a large prune never holds up the writer.
    public func pruneExecutions(in rows: Range<Int64>, before: Int64, throughRow lastDropped: Int64) throws {
        try connection.withConnection { db in
            // The rows' numbers, not an index by time: an index cost every recorded attempt a second insert.
            let statement = try db.statement(
                "DELETE FROM executions WHERE row >= ?1 AND row < ?2 AND (row <= ?3 OR time < ?4)")
            defer { statement.reset() }
            try statement.bind(1, rows.lowerBound)
            try statement.bind(2, rows.upperBound)
            try statement.bind(3, lastDropped)
            try statement.bind(4, before)
            _ = try statement.step()
        }
    }

    /// Through the partial index `outbox_failed`, which holds only given-up deliveries: a scan of the outbox, once
    /// a minute, would read every delivery waiting behind a receiver that is down.
    static let failedDeliveriesPruneQuery = "DELETE FROM outbox WHERE failed = 1 AND received < ?"

    /// Drops given-up deliveries received before `before`: they are kept as long as their records.
    public func pruneFailedDeliveries(before: Int64) throws {
        try connection.withConnection { db in
            let statement = try db.statement(Self.failedDeliveriesPruneQuery)
            defer { statement.reset() }
            try statement.bind(1, before)
            _ = try statement.step()
        }
    }

    // MARK: Helpers

    private static func count(_ db: SQLiteConnection, _ sql: String) throws -> Int {
        let statement = try db.statement(sql)
        defer { statement.reset() }
        guard try statement.step() else { return 0 }
        return Int(statement.int64(0))
    }

    private static func bindOptional(_ statement: SQLiteStatement, _ index: Int32, _ text: String?) throws {
        if let text { try statement.bind(index, text) } else { try statement.bind(index, nil as Int64?) }
    }
}
