/// Exponential backoff, optionally jittered: the one retry policy of steady (work-queue keys, agent reconnects and
/// enrolment, client watches). A value: it computes delays and the caller sleeps.
///
/// Attempt 0 waits ``base``; each further attempt multiplies the delay by ``factor`` until it reaches ``cap``.
/// With ``jitter`` above 0, each delay is scaled by a random factor in `1 ± jitter`, so clients that failed
/// together do not all return at once.
public struct Backoff: Sendable, Equatable {
    /// The delay before the first retry.
    public var base: Duration
    /// What each further delay is multiplied by (at least 1).
    public var factor: Double
    /// The longest delay, before jitter.
    public var cap: Duration
    /// The relative spread of each delay around its value, in `0...1` (0.5 is ±50%).
    public var jitter: Double

    /// Creates a backoff; `cap` is raised to `base`, `factor` to 1 and `jitter` kept in `0...1`.
    public init(base: Duration, factor: Double = 2, cap: Duration, jitter: Double = 0) {
        self.base = max(base, .zero)
        self.factor = factor.isFinite ? max(factor, 1) : 1
        self.cap = max(cap, self.base)
        self.jitter = jitter.isFinite ? min(max(jitter, 0), 1) : 0
    }

    /// A work queue's per-key retries: 5 ms doubling to 60 s, no jitter (client-go's per-item limiter, lower cap).
    public static let perKeyRetry = Backoff(base: .milliseconds(5), cap: .seconds(60))

    /// An agent's reconnection and enrolment attempts: 200 ms doubling to 30 s, ±50%.
    public static let reconnect = Backoff(base: .milliseconds(200), cap: .seconds(30), jitter: 0.5)

    /// A client re-opening a watch the server ended: 200 ms doubling to 5 s, ±20%.
    public static let watchRestart = Backoff(base: .milliseconds(200), cap: .seconds(5), jitter: 0.2)

    /// The delay before retry `attempt` (0 for the first retry), without jitter.
    public func delay(attempt: Int) -> Duration {
        var delay = base
        guard factor > 1 else { return min(delay, cap) }
        // The loop ends at the cap, after at most a few dozen steps however large `attempt` is.
        for _ in 0..<max(attempt, 0) {
            delay = delay * factor
            if delay >= cap { return cap }
        }
        return min(delay, cap)
    }

    /// The delay before retry `attempt`, jittered with `random`.
    public func delay(attempt: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let delay = self.delay(attempt: attempt)
        guard jitter > 0 else { return delay }
        // One draw mapped onto [1 - jitter, 1 + jitter]: no rejection loop, so any generator terminates.
        let unit = Double(random.next() >> 11) / Double(UInt64(1) << 53)
        return delay * ((1 - jitter) + 2 * jitter * unit)
    }

    /// The delay before retry `attempt`, jittered with the system's random numbers.
    public func jitteredDelay(attempt: Int) -> Duration {
        var random = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &random)
    }
}
