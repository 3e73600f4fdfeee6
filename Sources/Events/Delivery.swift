/// One (event, route, action) delivery as the outbox holds it.
public struct Delivery: Sendable, Equatable {
    /// The outbox row.
    public var rowID: Int64
    /// Sent to receivers as `Steady-Delivery-Id`, the same on every attempt, so they can drop duplicates.
    public var deliveryID: String
    public var eventID: String
    public var route: String
    public var action: String
    public var message: RenderedMessage
    /// Attempts made so far.
    public var attempts: Int
    /// When the next attempt is due, in milliseconds since 1970.
    public var dueAt: Int64
    /// The route's dedup key, recorded once every delivery of the event on the route has succeeded.
    public var dedupKey: String?
    /// When the dedup key's window ends, in milliseconds since 1970.
    public var dedupExpiry: Int64?
    /// The outbox row that waits for this one (the next action of a `serializeActions` route).
    public var nextRowID: Int64?
    /// When the event was taken in, in milliseconds since 1970, for latency.
    public var receivedAt: Int64

    public init(
        rowID: Int64, deliveryID: String, eventID: String, route: String, action: String, message: RenderedMessage,
        attempts: Int = 0, dueAt: Int64 = 0, dedupKey: String? = nil, dedupExpiry: Int64? = nil,
        nextRowID: Int64? = nil, receivedAt: Int64 = 0
    ) {
        self.rowID = rowID
        self.deliveryID = deliveryID
        self.eventID = eventID
        self.route = route
        self.action = action
        self.message = message
        self.attempts = attempts
        self.dueAt = dueAt
        self.dedupKey = dedupKey
        self.dedupExpiry = dedupExpiry
        self.nextRowID = nextRowID
        self.receivedAt = receivedAt
    }
}
