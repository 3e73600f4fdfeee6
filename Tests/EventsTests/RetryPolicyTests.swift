import Resources
import Testing

@testable import Events

@Suite struct RetryPolicyTests {
    @Test func retriesWithGrowingBackoffUntilTheAttemptsAreUsed() {
        let policy = RetryPolicy(attempts: 3, backoff: Backoff(base: .seconds(2), cap: .seconds(5)), timeout: .seconds(1))
        #expect(policy.decision(afterFailedAttempt: 1) == .retry(after: .seconds(2)))
        #expect(policy.decision(afterFailedAttempt: 2) == .retry(after: .seconds(4)))
        #expect(policy.decision(afterFailedAttempt: 3) == .giveUp)
    }

    @Test func aPermanentFailureIsNotRetried() {
        #expect(RetryPolicy.standard.decision(afterFailedAttempt: 1, isPermanent: true) == .giveUp)
    }

    @Test func anActionsRetryAndTimeoutAreUsed() throws {
        let action = try StrictDecoder().decode(
            ActionSpec.self,
            from: ["type": "stdout", "timeout": "4s", "retry": ["attempts": 7, "backoff": "3s", "maxBackoff": "10s"]])
        let policy = RetryPolicy(action: action)
        #expect(policy.attempts == 7)
        #expect(policy.backoff.base == .seconds(3))
        #expect(policy.backoff.cap == .seconds(10))
        #expect(policy.timeout == .seconds(4))
    }
}
