import Synchronization

/// A wake-up that a waiting task can give up on: `wait()` returns when `signal()` was called since the last
/// wait, or when the waiting task is cancelled. (Cancelling a task waiting on an `AsyncStream` would finish the
/// stream for good; this can be waited on again.)
public final class WakeSignal: Sendable {
    private struct State {
        var isSignalled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    /// Creates a signal that nothing has signalled yet.
    public init() {}

    /// Wakes the waiter, or the next one if none waits now.
    public func signal() {
        let waiter = state.withLock { state in
            guard let waiter = state.waiter else {
                state.isSignalled = true
                return nil as CheckedContinuation<Void, Never>?
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns once signalled, or cancelled; one waiter at a time.
    public func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.isSignalled || Task.isCancelled {
                        state.isSignalled = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }

    /// Returns once signalled, cancelled, or `deadline` has come; with no deadline, as ``wait()``.
    public func wait(until deadline: ContinuousClock.Instant?) async {
        guard let deadline else { return await wait() }
        await wait(timeout: max(deadline - .now, .zero))
    }

    /// Returns once signalled, cancelled, or `timeout` has passed.
    public func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
