import Resources
import Synchronization
import Testing

@testable import Events

/// Dedup windows and aggregate timeouts while the system clock is stepped by hours, forward and back: decided on
/// the pipeline's default clock (``AnchoredWallClock``), a window neither ends early nor lingers.
@Suite struct ClockStepTests {
    /// A system clock the test steps, and a monotonic clock the test advances.
    final class Clocks: Sendable {
        let wall = Mutex<Int64>(1_800_000_000_000)
        let monotonic = Mutex(ContinuousClock.now)

        func advance(_ duration: Duration) {
            let (seconds, attoseconds) = duration.components
            wall.withLock { $0 += seconds * 1000 + attoseconds / 1_000_000_000_000_000 }
            monotonic.withLock { $0 += duration }
        }

        /// Steps the system clock only, as an administrator or NTP does.
        func step(hours: Int64) { wall.withLock { $0 += hours * 3_600_000 } }

        func makeClock() -> AnchoredWallClock {
            AnchoredWallClock(
                wallMilliseconds: { self.wall.withLock { $0 } }, monotonic: { self.monotonic.withLock { $0 } })
        }
    }

    static let hour: Int64 = 3_600_000

    @Test func aDedupKeyNeitherExpiresEarlyAfterAForwardStepNorLingersAfterABackwardOne() {
        let clocks = Clocks()
        let clock = clocks.makeClock()
        var window = DedupWindow()
        window.record("k", expiresAt: clock.milliseconds() + Self.hour)

        clocks.step(hours: 6)
        clocks.advance(.seconds(1800))
        #expect(window.isDuplicate("k", now: clock.milliseconds()), "a forward step ended the window early")
        // What the system clock reads would have ended it: this is the step the anchored clock ignores.
        #expect(!window.isDuplicate("k", now: clocks.wall.withLock { $0 }))

        clocks.step(hours: -12)
        clocks.advance(.seconds(1799))
        #expect(window.isDuplicate("k", now: clock.milliseconds()))
        clocks.advance(.seconds(1))
        #expect(!window.isDuplicate("k", now: clock.milliseconds()), "a backward step stretched the window")
        #expect(window.expire(now: clock.milliseconds()) == ["k"])
    }

    @Test func anAggregateIsReleasedAtItsTimeoutWhateverTheSystemClockDoes() {
        for hours: Int64 in [6, -6] {
            let clocks = Clocks()
            let clock = clocks.makeClock()
            var buffer = AggregateBuffer(count: 10, timeout: 5 * 60_000)
            _ = buffer.add(.init(eventID: "e1", message: Array("one".utf8), heldAt: clock.milliseconds()))
            clocks.step(hours: hours)
            clocks.advance(.seconds(299))
            guard case .hold = buffer.expire(now: clock.milliseconds()) else {
                Issue.record("released early after a step of \(hours) h")
                continue
            }
            clocks.advance(.seconds(1))
            guard case .release(let items) = buffer.expire(now: clock.milliseconds()) else {
                Issue.record("not released at its timeout after a step of \(hours) h")
                continue
            }
            #expect(items.map(\.eventID) == ["e1"])
        }
    }
}
