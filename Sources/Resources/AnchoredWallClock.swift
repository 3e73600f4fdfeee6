import Foundation

/// Wall-clock milliseconds that advance with the monotonic clock: the wall clock is read once, when the clock is
/// made, and from then on only elapsed monotonic time is added.
///
/// For decisions about elapsed time whose instants must also be written down in wall-clock terms (a dedup key's
/// expiry and a retry's due time go into `events.db` and outlive the process): a step of the system clock while
/// the process runs, by hours forward or back, neither ends a window early nor stretches it. The price is that its
/// readings drift from the stepped system clock until the next start, so timestamps shown to people use the system
/// clock instead.
public struct AnchoredWallClock: Sendable {
    private let anchorMilliseconds: Int64
    private let anchorInstant: ContinuousClock.Instant
    private let monotonic: @Sendable () -> ContinuousClock.Instant

    /// Anchors at `wallMilliseconds()` (read once) and `monotonic()`; both are injected by tests.
    public init(
        wallMilliseconds: () -> Int64 = AnchoredWallClock.systemMilliseconds,
        monotonic: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        anchorMilliseconds = wallMilliseconds()
        anchorInstant = monotonic()
        self.monotonic = monotonic
    }

    /// Milliseconds since 1970 as of the anchor, plus the monotonic time elapsed since.
    public func milliseconds() -> Int64 {
        let (seconds, attoseconds) = (monotonic() - anchorInstant).components
        return anchorMilliseconds + seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// The system's wall clock, in milliseconds since 1970.
    public static func systemMilliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }
}
