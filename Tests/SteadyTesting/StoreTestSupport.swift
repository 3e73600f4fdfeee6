import Foundation
import Reconciler

/// Helpers shared by the store conformance suite and the SQLite store's own tests.
public enum StoreTestSupport {
    /// A small JSON document holding `text`.
    public static func json(_ text: String) -> Data {
        Data("{\"v\":\"\(text)\"}".utf8)
    }

    /// The `StoreError` thrown by `body`, or nil when it succeeds; other errors fail the test.
    public static func storeError<T>(_ body: () async throws -> T) async throws -> StoreError? {
        do {
            _ = try await body()
            return nil
        } catch let error as StoreError {
            return error
        }
    }

    /// The first `count` events of `stream`, failing after `timeout` so a missing event cannot hang the suite.
    public static func collect(
        _ stream: AsyncThrowingStream<StoreEvent, any Error>,
        count: Int,
        timeout: Duration = .seconds(20)
    ) async throws -> [StoreEvent] {
        try await collect(stream, timeout: timeout) { events in events.count >= count }
    }

    /// The events of `stream` up to the first one at or after `revision`.
    public static func collect(
        _ stream: AsyncThrowingStream<StoreEvent, any Error>,
        through revision: Int64,
        timeout: Duration = .seconds(20)
    ) async throws -> [StoreEvent] {
        try await collect(stream, timeout: timeout) { events in (events.last?.revision ?? 0) >= revision }
    }

    private static func collect(
        _ stream: AsyncThrowingStream<StoreEvent, any Error>,
        timeout: Duration,
        until done: @escaping @Sendable ([StoreEvent]) -> Bool
    ) async throws -> [StoreEvent] {
        try await withThrowingTaskGroup(of: [StoreEvent]?.self) { group in
            group.addTask {
                var events: [StoreEvent] = []
                for try await event in stream {
                    events.append(event)
                    if done(events) {
                        break
                    }
                }
                return events
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            guard let events = first else {
                throw StoreTestTimeout(timeout: timeout)
            }
            return events
        }
    }
}

/// A watch did not deliver the expected events in time.
public struct StoreTestTimeout: Error, CustomStringConvertible {
    public var timeout: Duration
    public var description: String { "the watch did not deliver the expected events within \(timeout)" }
}
