/// One controller replica's share of a Route's or Action's deliveries, when several controllers share an etcd
/// store: each replica delivers the events it took in, from its own outbox.
///
/// Status keeps one per replica (`status.replicas`, keyed by the replica's host and data directory) because these
/// figures are levels, not counts: `pending` is their sum, and an Action is `Degraded` while any replica's
/// deliveries keep failing.
public struct ReplicaDeliveries: Codable, Sendable, Equatable, FieldDocumented {
    /// Deliveries still due on that replica.
    public var pending: Int64?
    /// Deliveries given up in a row there since its last success (Actions only).
    public var failingInARow: Int64?
    /// The last delivery error there (Actions only).
    public var lastError: String?

    public init(pending: Int64? = nil, failingInARow: Int64? = nil, lastError: String? = nil) {
        self.pending = pending
        self.failingInARow = failingInARow
        self.lastError = lastError
    }

    public static let fieldDescriptions = [
        "pending": "Deliveries still due on that replica.",
        "failingInARow": "Deliveries given up in a row on that replica since its last success.",
        "lastError": "The last delivery error on that replica.",
    ]
}
