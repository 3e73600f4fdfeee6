import Resources
import Testing

@Suite(.timeLimit(.minutes(1))) struct BackoffTests {
    /// Returns the same value every time, so jitter is predictable.
    struct FixedRandom: RandomNumberGenerator {
        var value: UInt64
        mutating func next() -> UInt64 { value }
    }

    @Test func multipliesByTheFactorUpToTheCap() {
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(1))
        #expect((0..<6).map { backoff.delay(attempt: $0) } == [
            .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1),
        ])
        let tripling = Backoff(base: .seconds(1), factor: 3, cap: .seconds(20))
        #expect((0..<4).map { tripling.delay(attempt: $0) } == [.seconds(1), .seconds(3), .seconds(9), .seconds(20)])
    }

    @Test func hugeAndNegativeAttemptsStayBounded() {
        let backoff = Backoff.perKeyRetry
        #expect(backoff.delay(attempt: Int.max) == .seconds(60))
        #expect(backoff.delay(attempt: -3) == .milliseconds(5))
        // A factor below 1 is raised to 1, a cap below the base to the base.
        #expect(Backoff(base: .seconds(2), factor: 0.5, cap: .seconds(1)).delay(attempt: 5) == .seconds(2))
    }

    @Test func jitterSpreadsEachDelayWithinItsBounds() {
        let backoff = Backoff(base: .seconds(1), cap: .seconds(30), jitter: 0.5)
        var lowest = FixedRandom(value: 0)
        var highest = FixedRandom(value: .max)
        #expect(backoff.delay(attempt: 0, using: &lowest) == .milliseconds(500))
        #expect(backoff.delay(attempt: 1, using: &lowest) == .seconds(1))
        let high = backoff.delay(attempt: 0, using: &highest)
        #expect(high > .milliseconds(1499) && high <= .milliseconds(1500))
        for attempt in 0..<10 {
            let delay = Backoff.reconnect.jitteredDelay(attempt: attempt)
            let base = Backoff.reconnect.delay(attempt: attempt)
            #expect(delay >= base * 0.5 && delay <= base * 1.5, "attempt \(attempt): \(delay) for \(base)")
        }
        // Without jitter the random source is not consulted.
        #expect(Backoff.perKeyRetry.delay(attempt: 2, using: &highest) == .milliseconds(20))
    }
}
