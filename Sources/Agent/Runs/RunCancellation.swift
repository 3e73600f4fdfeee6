import Synchronization

/// Asks one running ``RunExecutor/run(_:cancellation:onStart:onOutput:)`` to stop: its process group is killed and
/// the run ends `Cancelled`.
///
/// Wiring: the agent keeps one per run UID while the run goes, and calls ``cancel()`` when a `RunCancel` arrives
/// for that UID. Cancelling before the process starts means it never starts.
public final class RunCancellation: Sendable {
    private let state = Mutex<Bool>(false)
    private let signal: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init() {
        (signal, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Stops the run; a second call does nothing.
    public func cancel() {
        let isFirst = state.withLock { isCancelled in
            defer { isCancelled = true }
            return !isCancelled
        }
        guard isFirst else { return }
        continuation.yield()
        continuation.finish()
    }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { state.withLock { $0 } }

    /// Returns when ``cancel()`` is called, or when the calling task is cancelled. For one waiter only.
    func wait() async {
        for await _ in signal { return }
    }
}
