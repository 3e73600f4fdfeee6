import Foundation
import NIOPosix
import Synchronization

/// Group commit: callers hand in items and wait; the caller that finds no writer at work starts one, which writes
/// every item waiting, one batch (one transaction) per round, until none is left, answering each caller once its
/// batch is written.
///
/// Under load each transaction carries everything that arrived while the previous one was written, so the number
/// of transactions (and fsyncs) follows the disk rather than the rate of callers; alone, an item is written at once.
/// With a ``spacing``, a round starts no sooner than that after the previous one started, so a steady trickle of
/// items is written a few per round rather than one by one.
final class GroupCommit<Item: Sendable>: Sendable {
    /// Called once, on the writer's thread, when the batch holding an item is written or failed.
    typealias Completion = @Sendable (Result<Void, any Error>) -> Void

    private struct State {
        var pending: [(item: Item, completion: Completion)] = []
        var isWriting = false
        var lastRoundStart: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    /// The least time between the starts of two rounds; zero writes each round as soon as the last is done.
    let spacing: Duration

    init(spacing: Duration = .zero) {
        self.spacing = spacing
    }

    /// Adds `item` and returns once a batch holding it has been written by `write`, or throws what `write` threw
    /// for that batch. Every caller of one instance must pass the same `write`: any of them may write the others'.
    /// Batches are written on `threads`, never on a caller's thread: a write blocks (a commit, an fsync), and must
    /// not hold one of the few threads Swift's concurrency runs tasks on.
    func submit(_ item: Item, on threads: NIOThreadPool, write: @escaping @Sendable ([Item]) throws -> Void)
        async throws
    {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            submit(item, on: threads, write: write) { continuation.resume(with: $0) }
        }
    }

    /// As the asynchronous form, for a caller that cannot wait (an event loop): `completion` is called on the
    /// writer's thread.
    func submit(
        _ item: Item, on threads: NIOThreadPool, write: @escaping @Sendable ([Item]) throws -> Void,
        completion: @escaping Completion
    ) {
        // A pool that is shut down runs the work at once, here: the batch is still written and answered.
        if add(item, completion) { threads.submit { _ in self.drain(write) } }
    }

    /// Queues `item`; true when the caller is to start the writer.
    private func add(_ item: Item, _ completion: @escaping Completion) -> Bool {
        state.withLock { state in
            state.pending.append((item, completion))
            defer { state.isWriting = true }
            return !state.isWriting
        }
    }

    private func drain(_ write: @Sendable ([Item]) throws -> Void) {
        while true {
            // Waiting here, on the writer's own thread, lets what arrives meanwhile join this round.
            let wait = state.withLock { state in state.lastRoundStart.map { $0 + spacing - .now } }
            if let wait, wait > .zero { Thread.sleep(forTimeInterval: wait.timeInterval) }
            let batch = state.withLock { state in
                let pending = state.pending
                state.pending = []
                if pending.isEmpty { state.isWriting = false } else { state.lastRoundStart = .now }
                return pending
            }
            guard !batch.isEmpty else { return }
            let result: Result<Void, any Error>
            do {
                try write(batch.map(\.item))
                result = .success(())
            } catch {
                result = .failure(error)
            }
            for waiting in batch { waiting.completion(result) }
        }
    }
}
