import Foundation
import Synchronization

/// One watcher: catches up from the event log page by page, then receives live events through a bounded buffer.
///
/// The consumer pulls with `next()`, so catching up is paced by the consumer and holds at most one page in
/// memory. `cursor` is the newest revision already scanned; anything at or below it is skipped, which is what
/// keeps the hand-over from log to live events free of gaps and duplicates.
final class StoreWatchSubscription: Sendable {
    private enum Phase {
        case replaying
        case live
        case failed(StoreError)
        case finished
    }

    private struct State {
        var buffer: [StoreEvent] = []
        var head = 0
        var cursor: Int64
        var phase = Phase.replaying
        var waiters: [CheckedContinuation<Void, Never>] = []

        var pending: Int { buffer.count - head }

        mutating func takeWaiters() -> [CheckedContinuation<Void, Never>] {
            defer { waiters.removeAll() }
            return waiters
        }

        /// Removes the oldest buffered event, compacting the storage now and then so it does not grow forever.
        mutating func popFirst() -> StoreEvent {
            let event = buffer[head]
            head += 1
            if head == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 256, head * 2 >= buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            return event
        }
    }

    private enum Step {
        case event(StoreEvent)
        case replay
        case wait
        case end
    }

    let id: Int
    let kind: String?
    private let capacity: Int
    private let pageSize: Int
    private let reader: SQLiteReader
    private let hub: StoreWatchHub
    private let state: Mutex<State>

    /// Creates a subscription for events of `kind` (or all kinds) with revision > `fromRevision`.
    ///
    /// `capacity` bounds the live events waiting for the consumer; on overflow the stream ends with `unavailable`.
    init(hub: StoreWatchHub, reader: SQLiteReader, kind: String?, fromRevision: Int64, capacity: Int) {
        self.id = hub.makeID()
        self.kind = kind
        self.capacity = max(capacity, 1)
        self.pageSize = min(self.capacity, 512)
        self.reader = reader
        self.hub = hub
        self.state = Mutex(State(cursor: max(fromRevision, 0)))
    }

    /// Reads the first page of the log, so that a compacted start revision fails before the stream is returned.
    func start() async throws {
        try await replay()
    }

    /// The next event, nil when the stream has ended normally; throws when it ended with an error.
    func next() async throws -> StoreEvent? {
        while true {
            if Task.isCancelled {
                cancel()
                return nil
            }
            let step = try state.withLock { state throws -> Step in
                if state.head < state.buffer.count {
                    return .event(state.popFirst())
                }
                switch state.phase {
                case .replaying:
                    return .replay
                case .live:
                    return .wait
                case .failed(let error):
                    state.phase = .finished
                    throw error
                case .finished:
                    return .end
                }
            }
            switch step {
            case .event(let event):
                return event
            case .replay:
                try await replay()
            case .wait:
                await waitForEvents()
            case .end:
                return nil
            }
        }
    }

    /// Appends live events of one commit; returns false when the buffer overflowed and the watcher was failed.
    func deliver(_ events: [StoreEvent]) -> Bool {
        let (waiters, keep) = state.withLock { state -> ([CheckedContinuation<Void, Never>], Bool) in
            guard case .live = state.phase else {
                return ([], true)
            }
            let before = state.pending
            for event in events where event.revision > state.cursor {
                if state.pending >= capacity {
                    state.phase = .failed(
                        StoreError(
                            code: .unavailable,
                            message: "watcher fell behind: more than \(capacity) undelivered events; re-list and watch"
                                + " again from the list's revision"
                        )
                    )
                    return (state.takeWaiters(), false)
                }
                state.buffer.append(event)
                state.cursor = event.revision
            }
            return (state.pending > before ? state.takeWaiters() : [], true)
        }
        for waiter in waiters {
            waiter.resume()
        }
        return keep
    }

    /// Ends the stream after the buffered events, with `error` or normally when nil.
    func finish(throwing error: StoreError?) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            switch state.phase {
            case .failed, .finished:
                return []
            case .replaying, .live:
                state.phase = error.map { .failed($0) } ?? .finished
                return state.takeWaiters()
            }
        }
        for waiter in waiters {
            waiter.resume()
        }
    }

    /// Stops the watcher for good: drops buffered events and unregisters it from the hub.
    func cancel() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.phase = .finished
            state.buffer.removeAll()
            state.head = 0
            return state.takeWaiters()
        }
        for waiter in waiters {
            waiter.resume()
        }
        hub.remove(id)
    }

    /// Reads the next page of the log, on the store's read threads; goes live once the log has been read up to the
    /// last published event. Only the consumer's task replays, and live events are not taken before then, so the
    /// read needs no lock.
    private func replay() async throws {
        let cursor = state.withLock { $0.cursor }
        let page: SQLiteReader.EventPage
        do {
            page = try await reader.run { [kind, pageSize] in try $0.events(after: cursor, kind: kind, limit: pageSize) }
        } catch {
            state.withLock { $0.phase = .finished }
            throw error
        }
        state.withLock { state in
            // Cancelled while reading: stay finished, and out of the hub.
            guard case .replaying = state.phase else { return }
            state.buffer.append(contentsOf: page.events)
            state.cursor = page.cursor
            guard page.events.count < pageSize else {
                return
            }
            switch hub.activate(self, cursor: state.cursor) {
            case .live:
                state.phase = .live
            case .behind:
                break
            case .closed:
                state.phase = .failed(StoreError(code: .unavailable, message: "store is closed"))
            }
        }
    }

    private func waitForEvents() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    guard state.head == state.buffer.count, case .live = state.phase else {
                        return true
                    }
                    state.waiters.append(continuation)
                    return false
                }
                if ready {
                    continuation.resume()
                }
            }
        } onCancel: {
            cancel()
        }
    }
}

/// Keeps a subscription registered while its stream exists; dropping the stream unregisters it.
final class StoreWatchLease: Sendable {
    let subscription: StoreWatchSubscription

    init(_ subscription: StoreWatchSubscription) {
        self.subscription = subscription
    }

    deinit {
        subscription.cancel()
    }
}
