import Foundation
import Resources

/// The rendered messages one route holds until `count` of them have gathered or the first has waited `timeout`:
/// a value that does no I/O; the pipeline keeps a durable copy of every held item.
public struct AggregateBuffer: Sendable, Equatable {
    /// One held message.
    public struct Item: Sendable, Equatable {
        /// The event it was rendered from.
        public var eventID: String
        /// The rendered message.
        public var message: [UInt8]
        /// When it was held, in milliseconds since 1970.
        public var heldAt: Int64

        public init(eventID: String, message: [UInt8], heldAt: Int64) {
            self.eventID = eventID
            self.message = message
            self.heldAt = heldAt
        }
    }

    /// What to do after a change.
    public enum Directive: Sendable, Equatable {
        /// Keep holding; deliver at the deadline (milliseconds since 1970) when there is one.
        case hold(deadline: Int64?)
        /// Deliver these items now as one message; the buffer is empty again.
        case release([Item])
    }

    /// Release once this many have gathered; nil for no count limit.
    public let count: Int?
    /// Release once the first held item has waited this long, in milliseconds; nil for no time limit.
    public let timeout: Int64?
    /// What is held, oldest first.
    public private(set) var items: [Item] = []

    /// Creates a buffer holding `items` (reloaded after a restart); a count below 1 counts as 1.
    public init(count: Int?, timeout: Int64?, items: [Item] = []) {
        self.count = count.map { max($0, 1) }
        self.timeout = timeout.map { max($0, 0) }
        self.items = items
    }

    /// The held messages as the one message delivered: a JSON array when every one is JSON, else one per line.
    public static func combine(_ items: [Item]) -> [UInt8] {
        let values = items.compactMap { try? JSONValue.parse(Data($0.message)) }
        if values.count == items.count { return Array(JSONValue.array(values).jsonData()) }
        return Array(items.map(\.message).joined(separator: [0x0A]))
    }

    /// When the held items are due by time, if anything is held and there is a timeout.
    public var deadline: Int64? {
        guard let first = items.first, let timeout else { return nil }
        return first.heldAt + timeout
    }

    /// Holds `item` (or items reloaded after a restart) and says whether the count limit is now reached.
    public mutating func add(_ item: Item) -> Directive {
        items.append(item)
        if let count, items.count >= count {
            return .release(takeAll())
        }
        return .hold(deadline: deadline)
    }

    /// Releases everything held when the deadline has come at `now`.
    public mutating func expire(now: Int64) -> Directive {
        guard let deadline, now >= deadline else { return .hold(deadline: deadline) }
        return .release(takeAll())
    }

    private mutating func takeAll() -> [Item] {
        defer { items.removeAll() }
        return items
    }
}
