import Resources

/// Jittered exponential backoff between reconnection attempts. A value: the caller sleeps.
///
/// The base delay starts at ``initial`` and doubles after every failed attempt up to ``maximum``; each delay is
/// the base scaled by a random factor in `1 ± jitter`, so agents that lost the controller together do not all
/// return at once. ``reset()`` after a connection that worked.
public struct ReconnectBackoff: Sendable, Equatable {
    /// The first delay.
    public var initial: Duration
    /// The largest base delay.
    public var maximum: Duration
    /// The relative spread of each delay around its base, in `0...1` (0.5 is ±50%).
    public var jitter: Double
    /// The base delay of the next attempt.
    public private(set) var current: Duration

    /// Creates a backoff: by default 200 ms doubling to 30 s, ±50%.
    public init(initial: Duration = .milliseconds(200), maximum: Duration = .seconds(30), jitter: Double = 0.5) {
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.jitter = min(max(jitter, 0), 1)
        self.current = initial
    }

    /// The delay before the next attempt, using `random` for the jitter; the base doubles for the one after.
    public mutating func nextDelay(using random: inout some RandomNumberGenerator) -> Duration {
        let policy = Backoff(base: current, cap: maximum, jitter: jitter)
        current = policy.delay(attempt: 1)
        return policy.delay(attempt: 0, using: &random)
    }

    /// The delay before the next attempt, with the system's random numbers.
    public mutating func nextDelay() -> Duration {
        var random = SystemRandomNumberGenerator()
        return nextDelay(using: &random)
    }

    /// Starts over from ``initial``.
    public mutating func reset() {
        current = initial
    }
}
