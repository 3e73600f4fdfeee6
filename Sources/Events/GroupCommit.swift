import NIOPosix
import Synchronization

/// Group commit: callers hand in items and wait; the caller that finds no writer at work becomes the writer and
/// writes every item waiting, one batch (one transaction) per round, until none is left, answering each caller once
/// its batch is written.
///
/// Under load each transaction carries everything that arrived while the previous one was written, so the number
/// of transactions (and fsyncs) follows the disk rather than the rate of callers; alone, a caller writes at once.
final class GroupCommit<Item: Sendable>: Sendable {
    private struct State {
        var pending: [(item: Item, continuation: CheckedContinuation<Void, any Error>)] = []
        var isWriting = false
    }

    private let state = Mutex(State())

    /// Adds `item` and returns once a batch holding it has been written by `write`, or throws what `write` threw
    /// for that batch. Every caller of one instance must pass the same `write`: any of them may write the others'.
    func submit(_ item: Item, write: ([Item]) throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let leads = state.withLock { state in
                state.pending.append((item, continuation))
                defer { state.isWriting = true }
                return !state.isWriting
            }
            if leads { drain(write) }
        }
    }

    /// As ``submit(_:write:)``, but every batch is written on `threads`, never on a caller's thread: for writes that
    /// block (an fsync), which must not hold one of the few threads Swift's concurrency runs tasks on.
    func submit(_ item: Item, on threads: NIOThreadPool, write: @escaping @Sendable ([Item]) throws -> Void)
        async throws
    {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let leads = state.withLock { state in
                state.pending.append((item, continuation))
                defer { state.isWriting = true }
                return !state.isWriting
            }
            // A pool that is shut down runs the work at once, here: the batch is still written and answered.
            if leads { threads.submit { _ in self.drain(write) } }
        }
    }

    private func drain(_ write: ([Item]) throws -> Void) {
        while true {
            let batch = state.withLock { state in
                let pending = state.pending
                state.pending = []
                if pending.isEmpty { state.isWriting = false }
                return pending
            }
            guard !batch.isEmpty else { return }
            do {
                try write(batch.map(\.item))
            } catch {
                for waiting in batch { waiting.continuation.resume(throwing: error) }
                continue
            }
            for waiting in batch { waiting.continuation.resume() }
        }
    }
}
