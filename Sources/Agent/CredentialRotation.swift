import Foundation

/// When an agent rotates its credential, as a value that does no I/O: a third of the lifetime before expiry, again
/// after a failure (with backoff, never past expiry), and not again once the controller refused (the credential was
/// rotated by another holder, or revoked).
///
/// The lifetime arrives as wall-clock instants (the controller's), and is turned into instants of the monotonic
/// clock once, when it arrives: a step of the wall clock afterwards, forward or back, moves neither the rotation nor
/// the expiry the agent expects. Time is a parameter, so tests decide it.
public struct CredentialRotation: Sendable, Equatable {
    public typealias Instant = ContinuousClock.Instant

    /// What the agent does next.
    public enum Step: Sendable, Equatable {
        /// Asks the controller for a new credential now.
        case rotate
        /// Nothing until then.
        case wait(until: Instant)
        /// The credential has expired: only a new enrolment helps.
        case expired
        /// The credential does not expire: nothing to do, ever.
        case idle
    }

    /// When to rotate (a third of the lifetime before expiry); nil when the credential does not expire.
    public private(set) var rotateAt: Instant?
    /// When the credential expires; nil when it does not.
    public private(set) var expiresAt: Instant?
    /// Why the controller refused to rotate, once it did: the agent keeps its credential until it expires.
    public private(set) var refusal: String?
    private var failures = 0
    private var retryAt: Instant?

    /// The first retry after a failed rotation; doubled after each further failure, up to ``maximumRetryDelay``.
    public static let firstRetryDelay = Duration.seconds(1)
    public static let maximumRetryDelay = Duration.seconds(300)

    /// A credential issued at `issued` (nil: unknown, taken as `wallNow`) that expires at `expires` (nil: never),
    /// seen at `wallNow` on the wall clock and `now` on the monotonic one. With `isLifetimeKnown` false (an agent
    /// enrolled before credentials expired) the agent rotates at once, to learn it.
    public init(issued: Date?, expires: Date?, isLifetimeKnown: Bool = true, wallNow: Date, now: Instant) {
        set(issued: issued, expires: expires, wallNow: wallNow, now: now)
        if !isLifetimeKnown { rotateAt = now }
    }

    private mutating func set(issued: Date?, expires: Date?, wallNow: Date, now: Instant) {
        failures = 0
        retryAt = nil
        refusal = nil
        guard let expires else {
            rotateAt = nil
            expiresAt = nil
            return
        }
        let remaining = Self.duration(expires.timeIntervalSince(wallNow))
        let lifetime = Self.duration(expires.timeIntervalSince(min(issued ?? wallNow, wallNow)))
        expiresAt = now + remaining
        rotateAt = now + remaining - lifetime / 3
    }

    private static func duration(_ interval: TimeInterval) -> Duration {
        .milliseconds(Int64((interval * 1000).rounded()))
    }

    /// What to do at `now`.
    public func step(now: Instant) -> Step {
        guard let rotateAt else { return .idle }
        if let expiresAt, now >= expiresAt { return .expired }
        if refusal != nil { return expiresAt.map { .wait(until: $0) } ?? .idle }
        let next = max(rotateAt, retryAt ?? rotateAt)
        return now >= next ? .rotate : .wait(until: min(next, expiresAt ?? next))
    }

    /// A new credential arrived: its lifetime starts over.
    public mutating func rotated(issued: Date?, expires: Date?, wallNow: Date, now: Instant) {
        set(issued: issued, expires: expires, wallNow: wallNow, now: now)
    }

    /// The rotation failed at `now`; `refusal` when the controller refused it for good (no retry), nil when it may
    /// succeed later (the controller was away).
    public mutating func failed(now: Instant, refusal: String?) {
        if let refusal {
            self.refusal = refusal
            return
        }
        var delay = Self.firstRetryDelay
        for _ in 0..<min(failures, 16) where delay < Self.maximumRetryDelay { delay *= 2 }
        failures += 1
        retryAt = now + min(delay, Self.maximumRetryDelay)
    }
}
