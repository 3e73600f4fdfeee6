/// Whether an agent applied the newest slice it received.
public enum SyncStatus: Sendable, Equatable, CustomStringConvertible {
    /// No slice message was handled yet.
    case pending
    /// The newest slice received is applied.
    case synced
    /// The newest slice received could not be applied; the last good slice keeps serving.
    case notSynced(reason: String, message: String)

    /// Whether the newest slice received is applied.
    public var isSynced: Bool { self == .synced }

    /// The report reason, when not synced.
    public var reason: String? {
        if case .notSynced(let reason, _) = self { return reason }
        return nil
    }

    /// The report message, when not synced.
    public var message: String? {
        if case .notSynced(_, let message) = self { return message }
        return nil
    }

    public var description: String {
        switch self {
        case .pending: "pending"
        case .synced: "synced"
        case .notSynced(let reason, let message): "not synced (\(reason)): \(message)"
        }
    }
}
