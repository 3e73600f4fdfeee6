import Resources

/// The output of each runner's latest scheduled run (Runner `spec.schedule`), kept in the ``RunOutputStore`` as
/// the run ``run(of:)`` with the runner as its one runner, and read with `steady logs runner/NAME`.
///
/// The agent sends a scheduled run's `runStarted`, `runOutput` and `runResult` on its stream while one is up, with
/// a UID starting `RunProtocol.scheduledRunUIDPrefix`; the stream server hands those here rather than to the
/// RemoteRun dispatcher. A start drops the previous run's output, so only the latest is kept (bounded like a
/// RemoteRun's). Output written while the agent was disconnected arrives when it reconnects (its start, if that was
/// not sent either, then its output, then its result).
public struct ScheduledRunOutput: Sendable {
    let store: RunOutputStore

    public init(store: RunOutputStore) {
        self.store = store
    }

    /// Whether a run message from an agent is about one of its scheduled runs.
    public static func isScheduled(_ message: RunAgentMessage) -> Bool {
        message.runUID.hasPrefix(RunProtocol.scheduledRunUIDPrefix)
    }

    /// The store's run key of `runner`'s scheduled output; no RemoteRun UID (a UUID) looks like it.
    public static func run(of runner: String) -> String { "\(RunProtocol.scheduledRunUIDPrefix)\(runner)" }

    /// Takes one message of `runner`'s scheduled run; `runner` is the one its stream authenticated as.
    public func receive(runner: String, _ message: RunAgentMessage) {
        let run = Self.run(of: runner)
        switch message {
        case .started:
            store.delete(run: run)
        case .output(let chunk):
            if let dropped = chunk.droppedBefore { store.drop(run: run, runner: runner, bytes: dropped) }
            if let bytes = chunk.bytes { store.append(run: run, runner: runner, stream: chunk.stream, bytes: bytes) }
        case .result:
            store.finish(run: run, runner: runner)
        case .accepted, .refused:
            break
        }
    }
}
