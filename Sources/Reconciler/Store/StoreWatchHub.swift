import Foundation
import Synchronization

/// Fans committed events out to live watch subscriptions.
///
/// The writer calls `publish` after each commit, in revision order. A subscription catches up from the event
/// log first and becomes live through `activate`, which only succeeds once it has read every published
/// revision; since events are committed before they are published, anything published later reaches it live.
final class StoreWatchHub: Sendable {
    /// The outcome of a subscription asking to go live.
    enum Activation {
        /// The subscription is registered and will receive every event published from now on.
        case live
        /// Events newer than the subscription's cursor were already published; it must read the log again.
        case behind
        /// The store is closed.
        case closed
    }

    private struct State {
        var lastPublished: Int64
        var subscribers: [Int: StoreWatchSubscription] = [:]
        var nextID = 0
        var closed = false
    }

    private let state: Mutex<State>

    /// Creates a hub for a store whose newest committed revision is `revision`.
    init(revision: Int64) {
        state = Mutex(State(lastPublished: revision))
    }

    /// The number of live subscriptions, for tests and metrics.
    var subscriberCount: Int {
        state.withLock { $0.subscribers.count }
    }

    /// A fresh identifier for a new subscription.
    func makeID() -> Int {
        state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
    }

    /// Registers `subscription` as live if it has read everything published so far (`cursor`).
    func activate(_ subscription: StoreWatchSubscription, cursor: Int64) -> Activation {
        state.withLock { state in
            if state.closed {
                return .closed
            }
            if state.lastPublished > cursor {
                return .behind
            }
            state.subscribers[subscription.id] = subscription
            return .live
        }
    }

    /// Hands the events of one commit, oldest first, to every live subscription that wants them.
    func publish(_ events: [StoreEvent]) {
        guard let last = events.last else {
            return
        }
        // Snapshot under the lock and deliver outside it, so a slow subscriber lock never holds up the hub.
        let subscribers = state.withLock { state in
            state.lastPublished = max(state.lastPublished, last.revision)
            return Array(state.subscribers.values)
        }
        if subscribers.isEmpty {
            return
        }
        var byKind: [String: [StoreEvent]] = [:]
        for event in events {
            byKind[event.object.kind, default: []].append(event)
        }
        var overflowed: [Int] = []
        for subscriber in subscribers {
            let wanted: [StoreEvent]
            if let kind = subscriber.kind {
                guard let matching = byKind[kind] else {
                    continue
                }
                wanted = matching
            } else {
                wanted = events
            }
            if !subscriber.deliver(wanted) {
                overflowed.append(subscriber.id)
            }
        }
        if !overflowed.isEmpty {
            state.withLock { state in
                for id in overflowed {
                    state.subscribers[id] = nil
                }
            }
        }
    }

    /// Unregisters a subscription; harmless if it is not registered.
    func remove(_ id: Int) {
        _ = state.withLock { state in
            state.subscribers.removeValue(forKey: id)
        }
    }

    /// Ends every live subscription with an `unavailable` error and refuses new ones.
    func close() {
        let subscribers = state.withLock { state in
            state.closed = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers {
            subscriber.finish(throwing: StoreError(code: .unavailable, message: "store is closed"))
        }
    }
}
