/// The dedup keys one route has delivered, each until its window ends: a value that does no I/O.
///
/// A key is recorded only once every delivery of the event it came from has succeeded (the pipeline calls
/// ``record(_:expiresAt:)`` then, never at intake), so a failed delivery never marks an event seen. A key is a
/// duplicate strictly before its expiry and new again from that instant on: it expires exactly at its window.
public struct DedupWindow: Sendable, Equatable {
    /// When each recorded key stops counting as seen, in milliseconds since 1970.
    public private(set) var expiries: [String: Int64] = [:]

    /// Creates an empty window.
    public init() {}

    /// Whether `key` was delivered and its window has not ended at `now`.
    public func isDuplicate(_ key: String, now: Int64) -> Bool {
        guard let expiry = expiries[key] else { return false }
        return now < expiry
    }

    /// Records `key` as delivered until `expiresAt`; a later expiry already recorded is kept.
    public mutating func record(_ key: String, expiresAt: Int64) {
        expiries[key] = max(expiries[key] ?? .min, expiresAt)
    }

    /// Drops the keys whose window has ended at `now` and returns them, so their durable copies can go too.
    @discardableResult
    public mutating func expire(now: Int64) -> [String] {
        let ended = expiries.filter { $0.value <= now }.map(\.key)
        for key in ended { expiries[key] = nil }
        return ended
    }

    /// How many keys are held.
    public var count: Int { expiries.count }
}
