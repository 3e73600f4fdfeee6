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

    /// Submits `items` back to back without waiting, calls `afterSubmitting`, and returns once every one is written.
    func submitTogether(
        _ items: [String], to commit: GroupCommit<String>, write: @escaping @Sendable ([String]) throws -> Void,
        afterSubmitting: () -> Void = {}
    ) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let left = Mutex(items.count)
            for item in items {
                commit.submit(item, on: Self.threads, write: write) { _ in
                    if left.withLock({ left in
                        left -= 1
                        return left == 0
                    }) {
                        done.resume()
                    }
                }
            }
            afterSubmitting()
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
        await submitTogether(["b", "c", "d"], to: commit, write: write) { release.signal() }
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
        await submitTogether(["b", "c"], to: commit, write: { rounds.write($0) })
        #expect(rounds.items == [["a"], ["b", "c"]])
        let starts = rounds.starts
        #expect(starts[1] - starts[0] >= spacing)
    }

    @Test func aFailedRoundFailsEveryItemInIt() async {
        let commit = GroupCommit<String>()
        struct Refused: Error {}
        let rounds = Rounds()
        // One `write` for every caller, as the contract asks: the writer started for "a" may also write "b".
        let write: @Sendable ([String]) throws -> Void = { items in
            if items.contains("a") { throw Refused() }
            rounds.write(items)
        }
        await #expect(throws: Refused.self) {
            try await commit.submit("a", on: Self.threads, write: write)
        }
        // The writer goes on: the next round is written.
        await submitTogether(["b"], to: commit, write: write)
        #expect(rounds.items == [["b"]])
    }
}
