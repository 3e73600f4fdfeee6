import Foundation
import Resources
import CSQLite
import SQLiteSupport
import SteadyTesting
import Testing

@testable import Events

/// The outbox's guarantees, on a real SQLite file: what survives a reopen, and when a dedup key is recorded.
@Suite struct EventStoreTests {
    func delivery(_ action: String, event: String = "e1", key: String? = "k") -> EventStore.NewDelivery {
        EventStore.NewDelivery(
            eventID: event, route: "r", action: action, message: RenderedMessage(title: nil, body: Array("{}".utf8)),
            receivedAt: 1_000, dedupKey: key, dedupExpiry: key == nil ? nil : 61_000)
    }

    func record(_ delivery: Delivery, _ result: ExecutionRecord.Result) -> ExecutionRecord {
        ExecutionRecord(
            time: 2_000, eventID: delivery.eventID, route: delivery.route, action: delivery.action,
            location: "controller", attempt: delivery.attempts + 1, result: result, durationMilliseconds: 1,
            error: nil, deliveryID: delivery.deliveryID)
    }

    /// Routes events `e0`, `e1`, … to action `a` and records each delivery as succeeded.
    func deliver(events count: Int, in store: EventStore) throws {
        var step = EventStore.RoutingStep()
        step.groups = (0..<count).map { ([delivery("a", event: "e\($0)", key: nil)], false) }
        for ready in try store.commit(step, makeDeliveryID: { "\($0)/\($1)/\($2)" }) {
            _ = try store.complete(ready, outcome: .delivered, execution: record(ready, .succeeded))
        }
    }

    func open(_ directory: TemporaryDirectory) throws -> EventStore {
        try EventStore(path: directory.file("events.db").path)
    }

    @Test func aDedupKeyIsRecordedOnlyOnceEveryDeliveryOfTheEventOnItsRouteSucceeded() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try open(directory)
        var step = EventStore.RoutingStep()
        step.groups = [([delivery("a"), delivery("b")], false)]
        let ready = try store.commit(step) { "\($0)/\($1)/\($2)" }
        #expect(ready.count == 2)
        // One delivery fails for good: the key must not be recorded, whatever the other does.
        let failed = try store.complete(ready[0], outcome: .failed, execution: record(ready[0], .failed))
        #expect(failed.recordedDedupKey == nil)
        let delivered = try store.complete(ready[1], outcome: .delivered, execution: record(ready[1], .succeeded))
        #expect(delivered.recordedDedupKey == nil)
        #expect(try store.dedupWindows(now: 2_000).isEmpty)

        // Another event whose deliveries all succeed records its key, once the last one has.
        var second = EventStore.RoutingStep()
        second.groups = [([delivery("a", event: "e2"), delivery("b", event: "e2")], false)]
        let more = try store.commit(second) { "\($0)/\($1)/\($2)" }
        let first = try store.complete(more[0], outcome: .delivered, execution: record(more[0], .succeeded))
        #expect(first.recordedDedupKey == nil)
        let retried = try store.complete(more[1], outcome: .retry(dueAt: 3_000), execution: record(more[1], .retrying))
        #expect(retried.recordedDedupKey == nil)
        var again = more[1]
        again.attempts = 1
        let last = try store.complete(again, outcome: .delivered, execution: record(again, .succeeded))
        #expect(last.recordedDedupKey?.key == "k")
        #expect(last.recordedDedupKey?.expiresAt == 61_000)
        #expect(try store.dedupWindows(now: 60_999)["r"]?.isDuplicate("k", now: 60_999) == true)
        #expect(try store.dedupWindows(now: 61_000)["r"] == nil)
    }

    @Test func queuedEventsPendingDeliveriesAndHandOffsSurviveAReopen() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        do {
            let store = try open(directory)
            try store.enqueue([EventStore.NewEvent(id: "queued", receivedAt: 1, body: Array("{}".utf8))])
            var step = EventStore.RoutingStep()
            step.groups = [([delivery("a", key: nil), delivery("b", key: nil)], true)]
            step.handOffs = [EventHandOff(eventID: "e1", receivedAt: 1, body: "{}", due: [.init(route: "r", actions: ["c"])])]
            let ready = try store.commit(step) { "\($0)/\($1)/\($2)" }
            // Serialized: only the first is ready; the second waits for it.
            #expect(ready.map(\.action) == ["a"])
            store.close()
        }
        let store = try open(directory)
        #expect(try store.queuedEvents(limit: 10).map(\.id) == ["queued"])
        #expect(try store.readyDeliveries(action: "a", limit: 10, excluding: []).count == 1)
        #expect(try store.readyDeliveries(action: "b", limit: 10, excluding: []).isEmpty)
        #expect(try store.pendingHandOffs(limit: 10).map(\.handOff.eventID) == ["e1"])
        let first = try #require(try store.readyDeliveries(action: "a", limit: 10, excluding: []).first)
        // Finishing the first makes the next of its route ready, in the same transaction.
        let completion = try store.complete(first, outcome: .delivered, execution: record(first, .succeeded))
        #expect(completion.next?.action == "b")
        #expect(try store.readyDeliveries(action: "b", limit: 10, excluding: []).count == 1)
    }

    @Test func theNumberOfADeliveredRowIsNotGivenToTheNextRow() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try open(directory)
        var step = EventStore.RoutingStep()
        step.groups = [([delivery("a", key: nil)], false)]
        let first = try #require(try store.commit(step) { "\($0)/\($1)/\($2)" }.first)
        _ = try store.complete(first, outcome: .delivered, execution: record(first, .succeeded))
        // The pipeline may still hold the first row's number as in flight: the next row must not take it.
        step.groups = [([delivery("a", event: "e2", key: nil)], false)]
        let second = try #require(try store.commit(step) { "\($0)/\($1)/\($2)" }.first)
        #expect(second.rowID > first.rowID)
        #expect(try store.readyDeliveries(action: "a", limit: 10, excluding: []).map(\.rowID) == [second.rowID])
        store.close()
        // After a reopen, numbering goes on past the rows left.
        let reopened = try open(directory)
        step.groups = [([delivery("a", event: "e3", key: nil)], false)]
        let third = try #require(try reopened.commit(step) { "\($0)/\($1)/\($2)" }.first)
        #expect(third.rowID > second.rowID)
    }

    @Test func deliveryIDsAreTheSameForTheSameEventRouteAndAction() {
        let id = EventPipeline.deliveryID(eventID: "e", route: "r", action: "a")
        #expect(id == EventPipeline.deliveryID(eventID: "e", route: "r", action: "a"))
        #expect(id != EventPipeline.deliveryID(eventID: "e", route: "r", action: "b"))
        #expect(id.count == 32)
    }

    /// Under writes that never pause, the log is still copied into the file and started again from its beginning
    /// (the background copy alone never catches up with a writer that keeps going), so it stays a few MB long.
    @Test func theLogStaysShortWhileWritesNeverPause() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try open(directory)
        let log = directory.file("events.db-wal").path
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 4_000)
        var longest: UInt64 = 0
        // 4,500 transactions of three events of a page each: over 54 MB of log were none of it copied.
        for transaction in 0..<4_500 {
            try store.enqueue(
                (0..<3).map { EventStore.NewEvent(id: "e\(transaction)-\($0)", receivedAt: 1_000, body: body) })
            let size = (try? FileManager.default.attributesOfItem(atPath: log))?[.size] as? UInt64 ?? 0
            longest = max(longest, size)
            // A busy pipeline's pace (about 12 MB of log a second), not a loop that outruns any disk.
            usleep(1_000)
        }
        #expect(try store.depths().events == 13_500)
        // SQLite's own limit is 1,000 pages (4 MB); the copy starts there and the writer finishes it.
        #expect(longest < 24 << 20, "the log grew to \(longest) bytes")
        store.close()
        let reopened = try open(directory)
        #expect(try reopened.depths().events == 13_500)
    }

    /// A runner reports its records in the order they were written, and reads only those after the last one
    /// reported, across a reopen too.
    @Test func recordsAreReportedOnceInOrderAcrossAReopen() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var store = try open(directory)
        try deliver(events: 5, in: store)
        let first = try store.unreportedExecutions(limit: 2)
        #expect(first.map(\.eventID) == ["e0", "e1"])
        try store.markReported(through: try #require(first.last).sequence)
        #expect(try store.unreportedExecutions(limit: 10).map(\.eventID) == ["e2", "e3", "e4"])
        store.close()
        store = try open(directory)
        let rest = try store.unreportedExecutions(limit: 10)
        #expect(rest.map(\.eventID) == ["e2", "e3", "e4"])
        try store.markReported(through: try #require(rest.last).sequence)
        #expect(try store.unreportedExecutions(limit: 10).isEmpty)
        store.close()
        #expect(try open(directory).unreportedExecutions(limit: 10).isEmpty)
    }

    /// A file from a version that flagged each reported record (and kept no progress row) goes on from the first
    /// record not flagged.
    @Test func reportingGoesOnFromTheFlagsOfAnOlderFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try open(directory)
        try deliver(events: 4, in: store)
        store.close()
        let older = try SQLiteConnection(path: directory.file("events.db").path, flags: SQLITE_OPEN_READWRITE)
        try older.execute(
            "UPDATE executions SET reported = 1 WHERE event_id IN ('e0', 'e1'); DELETE FROM progress")
        older.close()
        let reopened = try open(directory)
        #expect(try reopened.unreportedExecutions(limit: 10).map(\.eventID) == ["e2", "e3"])
        reopened.close()
    }

    @Test func theRangeOfRecordsIsLookedUpInTheKeyNotScanned() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try open(directory)
        #expect(try store.executionRows() == nil)
        try deliver(events: 3, in: store)
        #expect(try store.executionRows() == 1...3)
        store.close()
        let steps = try queryPlan(EventStore.executionRowsQuery, in: directory)
        #expect(steps.contains { $0.hasPrefix("SEARCH executions") })
        #expect(!steps.contains { $0.hasPrefix("SCAN executions") }, "\(steps)")
    }

    @Test func givenUpDeliveriesArePrunedThroughTheirOwnIndex() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try open(directory)
        var step = EventStore.RoutingStep()
        step.groups = [([delivery("a", event: "e0", key: nil), delivery("a", event: "e1", key: nil)], false)]
        let ready = try store.commit(step, makeDeliveryID: { "\($0)/\($1)/\($2)" })
        _ = try store.complete(ready[0], outcome: .failed, execution: record(ready[0], .failed))
        try store.pruneFailedDeliveries(before: 1_000)
        let kept = try outboxEvents(in: directory)
        #expect(kept == ["e0", "e1"])
        try store.pruneFailedDeliveries(before: 1_001)
        let left = try outboxEvents(in: directory)
        #expect(left == ["e1"])
        store.close()
        let steps = try queryPlan(EventStore.failedDeliveriesPruneQuery, in: directory)
        #expect(steps.contains { $0.contains("outbox_failed") }, "\(steps)")
    }

    /// The details of SQLite's plan for `sql` on the store's file.
    func queryPlan(_ sql: String, in directory: TemporaryDirectory) throws -> [String] {
        try column(3, of: "EXPLAIN QUERY PLAN " + sql, in: directory)
    }

    /// The events of every delivery in the outbox, failed ones included.
    func outboxEvents(in directory: TemporaryDirectory) throws -> [String] {
        try column(0, of: "SELECT event_id FROM outbox ORDER BY event_id", in: directory)
    }

    func column(_ index: Int32, of sql: String, in directory: TemporaryDirectory) throws -> [String] {
        let connection = try SQLiteConnection(path: directory.file("events.db").path, flags: SQLITE_OPEN_READONLY)
        defer { connection.close() }
        let statement = try connection.statement(sql)
        var values: [String] = []
        while try statement.step() { values.append(statement.text(index)) }
        return values
    }
}
