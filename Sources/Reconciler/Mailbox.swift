import Synchronization

/// Items handed to an actor from code that cannot wait (an informer's task, an event loop): `post` appends under
/// a lock and wakes the consumer once per batch; the consumer takes everything posted so far, in order.
final class Mailbox<Item: Sendable>: Sendable {
    private let items = Mutex<[Item]>([])
    private let signal = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// Adds an item; wakes the consumer if it had taken everything before.
    func post(_ item: Item) {
        let wasEmpty = items.withLock { items in
            defer { items.append(item) }
            return items.isEmpty
        }
        if wasEmpty { signal.continuation.yield() }
    }

    /// Everything posted since the last call, oldest first.
    func take() -> [Item] {
        items.withLock { items in
            defer { items = [] }
            return items
        }
    }

    /// Yields whenever items may be waiting; for the one consumer.
    var arrivals: AsyncStream<Void> { signal.stream }
}
