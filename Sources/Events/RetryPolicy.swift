import Resources

/// How often one delivery is attempted and how long it waits between attempts: an Action's `retry` and `timeout`.
public struct RetryPolicy: Sendable, Equatable {
    /// What to do after an attempt failed.
    public enum Decision: Sendable, Equatable {
        /// Try again after this delay.
        case retry(after: Duration)
        /// Stop; the delivery is recorded as failed.
        case giveUp
    }

    /// How many attempts in all, at least 1.
    public var attempts: Int
    /// The delays between attempts.
    public var backoff: Backoff
    /// How long one attempt may take.
    public var timeout: Duration

    /// Five attempts, 1 s doubling to 60 s, 30 s per attempt: what an Action without `retry` gets.
    public static let standard = RetryPolicy(
        attempts: 5, backoff: Backoff(base: .seconds(1), cap: .seconds(60)), timeout: .seconds(30))

    public init(attempts: Int, backoff: Backoff, timeout: Duration) {
        self.attempts = max(attempts, 1)
        self.backoff = backoff
        self.timeout = timeout
    }

    /// The policy an Action declares, with the standard policy's values where it declares none.
    public init(action: ActionSpec) {
        let standard = RetryPolicy.standard
        let base = action.retry?.backoff?.duration ?? standard.backoff.base
        self.init(
            attempts: action.retry?.attempts ?? standard.attempts,
            backoff: Backoff(base: base, cap: action.retry?.maxBackoff?.duration ?? max(base, standard.backoff.cap)),
            timeout: action.timeout?.duration ?? standard.timeout)
    }

    /// What follows the failure of attempt number `attempt` (1 for the first); `isPermanent` failures (a
    /// receiver's 4xx, a missing secret) are not retried.
    public func decision(afterFailedAttempt attempt: Int, isPermanent: Bool = false) -> Decision {
        guard !isPermanent, attempt < attempts else { return .giveUp }
        return .retry(after: backoff.delay(attempt: attempt - 1))
    }
}
