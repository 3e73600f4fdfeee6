import Agent
import SteadyTesting
import Testing

/// A generator that returns a fixed sequence, so jitter is predictable.
struct ScriptedRandom: RandomNumberGenerator {
    var values: [UInt64]
    var index = 0

    mutating func next() -> UInt64 {
        defer { index = (index + 1) % values.count }
        return values[index]
    }
}

@Suite(.timeLimit(.minutes(5))) struct ReconnectBackoffTests {
    @Test func doublesUpToTheMaximumWithoutJitter() {
        var backoff = ReconnectBackoff(initial: .milliseconds(200), maximum: .seconds(2), jitter: 0)
        var random = ScriptedRandom(values: [0])
        let delays = (0..<6).map { _ in backoff.nextDelay(using: &random) }
        #expect(delays == [.milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .seconds(2), .seconds(2)])
        backoff.reset()
        #expect(backoff.nextDelay(using: &random) == .milliseconds(200))
    }

    @Test func jitterStaysWithinHalfOfTheBase() {
        var backoff = ReconnectBackoff()
        var random = SystemRandomNumberGenerator()
        var base = Duration.milliseconds(200)
        for _ in 0..<12 {
            let delay = backoff.nextDelay(using: &random)
            #expect(delay >= base * 0.5 && delay <= base * 1.5, "\(delay) for base \(base)")
            base = min(base * 2, .seconds(30))
        }
    }

    @Test func theInjectedRandomSourceDecidesTheJitter() {
        // The smallest random value gives the lowest delay.
        var low = ScriptedRandom(values: [0])
        var backoff = ReconnectBackoff(initial: .seconds(1), maximum: .seconds(30), jitter: 0.5)
        #expect(backoff.nextDelay(using: &low) == .milliseconds(500))
        #expect(backoff.nextDelay(using: &low) == .seconds(1))
        // The same seed gives the same schedule; another seed gives another.
        func schedule(seed: UInt64) -> [Duration] {
            var random = SeededGenerator(seed: seed)
            var backoff = ReconnectBackoff()
            return (0..<8).map { _ in backoff.nextDelay(using: &random) }
        }
        #expect(schedule(seed: 42) == schedule(seed: 42))
        #expect(schedule(seed: 42) != schedule(seed: 43))
    }
}
