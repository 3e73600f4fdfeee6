import Foundation
import NIOPosix
import Synchronization
import Testing

@testable import Events

@Suite struct GroupCommitTests {
    /// Rounds written, in order, with when each started.
    final class Rounds: Sendable {
        let written = Mutex<[(items: [String], at: ContinuousClock.Instant)]>([])
        var items: [[String]] { written.withLock { $0.map(\.items) } }
        var starts: [ContinuousClock.Instant] { written.withLock { $0.map(\.at) } }

        func write(_ items: [String]) {
            written.withLock { $0.append((items, .now)) }
        }
    }

    static let threads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()

    /// Submits `items` back to back without waiting, and returns once every one is written.
    func submitTogether(_ items: [String], to commit: GroupCommit<String>, rounds: Rounds) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let left = Mutex(items.count)
            for item in items {
                commit.submit(item, on: Self.threads, write: { rounds.write($0) }) { _ in
                    if left.withLock({ left in
                        left -= 1
                        return left == 0
                    }) {
                        done.resume()
                    }
                }
            }
        }
    }

    @Test func whatArrivesWhileARoundIsWrittenIsWrittenInTheNext() async throws {
        let commit = GroupCommit<String>()
        let rounds = Rounds()
        let firstStarted = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let write: @Sendable ([String]) throws -> Void = { items in
            rounds.write(items)
            if items == ["a"] {
                firstStarted.signal()
                release.wait()
            }
        }
        async let first: Void = commit.submit("a", on: Self.threads, write: write)
        await Task.detached { firstStarted.wait() }.value
        let others = Mutex(0)
        await withCheckedContinuation { (queued: CheckedContinuation<Void, Never>) in
            for item in ["b", "c", "d"] {
                commit.submit(item, on: Self.threads, write: write) { _ in
                    if others.withLock({ count in
                        count += 1
                        return count == 3
                    }) {
                        queued.resume()
                    }
                }
            }
            release.signal()
        }
        try await first
        #expect(rounds.items == [["a"], ["b", "c", "d"]])
    }

    @Test func aRoundSoonAfterTheLastWaitsForTheSpacingAndTakesWhatArrivedMeanwhile() async throws {
        let spacing = Duration.milliseconds(300)
        let commit = GroupCommit<String>(spacing: spacing)
        let rounds = Rounds()
        try await commit.submit("a", on: Self.threads, write: { rounds.write($0) })
        // Without the spacing "b" would be written at once, alone; with it, "b" waits for the spacing and "c",
        // submitted a moment later, joins its round.
        await submitTogether(["b", "c"], to: commit, rounds: rounds)
        #expect(rounds.items == [["a"], ["b", "c"]])
        let starts = rounds.starts
        #expect(starts[1] - starts[0] >= spacing)
    }

    @Test func aFailedRoundFailsEveryItemInIt() async {
        let commit = GroupCommit<String>()
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await commit.submit("a", on: Self.threads, write: { _ in throw Refused() })
        }
        // The writer goes on: the next round is written.
        let rounds = Rounds()
        await submitTogether(["b"], to: commit, rounds: rounds)
        #expect(rounds.items == [["b"]])
    }
}
