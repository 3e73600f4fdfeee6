import NIOCore

/// Which Runner statuses the agent gateway is to write, and in what order: a value that does no I/O.
///
/// A runner has at most one writer at a time, which writes its newest status until none is pending, so that
/// the newest status is what stays written. Statuses come in two lanes:
/// - ``Lane/report``: what an agent's report or its silence changed (`Synced=True`, `Connected`), which a user
///   waits for; written at once, a few runners at a time;
/// - ``Lane/sliceChange``: what a slice change alone changed (`Synced=False` until the agent applies the new
///   slice), written by one writer, oldest first. The agent's report of the new slice usually comes before
///   that writer reaches the runner, and takes the runner to the report lane, so that after an apply changing
///   every runner's slice each runner is written once rather than twice, and the writes leave the cores to
///   the slice streams meanwhile.
struct StatusWriteQueue<Status> {
    enum Lane {
        case report
        case sliceChange
    }

    /// Which writer to wake after a ``post(_:runner:lane:)``.
    enum Wake: Equatable {
        case none
        /// Start a report-lane writer for the runner.
        case reportWriter
        /// The slice-change writer has a runner more to take.
        case sliceChangeWriter
    }

    /// The newest status not yet written, per runner.
    private var pending: [String: Status] = [:]
    /// Runners that have a writer, running or about to start.
    private(set) var writing: Set<String> = []
    /// Runners waiting in the slice-change lane, in the order they were posted; one that moved to the report lane
    /// meanwhile is skipped.
    private var sliceChangeOrder = CircularBuffer<String>()
    private var sliceChangeWaiting: Set<String> = []

    /// Records `status` as the runner's newest; says which writer, if any, is to be woken for it.
    mutating func post(_ status: Status, runner: String, lane: Lane) -> Wake {
        pending[runner] = status
        // A runner with a writer has its newest status written next.
        guard !writing.contains(runner) else { return .none }
        switch lane {
        case .report:
            sliceChangeWaiting.remove(runner)
            writing.insert(runner)
            return .reportWriter
        case .sliceChange:
            guard sliceChangeWaiting.insert(runner).inserted else { return .none }
            sliceChangeOrder.append(runner)
            return .sliceChangeWriter
        }
    }

    /// The next runner for the slice-change writer, now counted as written by it; nil when none waits.
    mutating func takeSliceChange() -> String? {
        while let runner = sliceChangeOrder.popFirst() {
            guard sliceChangeWaiting.remove(runner) != nil else { continue }
            writing.insert(runner)
            return runner
        }
        return nil
    }

    /// The status the runner's writer is to write next; nil when none is pending, and the writer is done.
    mutating func next(for runner: String) -> Status? {
        guard let status = pending.removeValue(forKey: runner) else {
            writing.remove(runner)
            return nil
        }
        return status
    }

    /// Puts back a status whose write failed, unless a newer one came meanwhile.
    mutating func retry(_ status: Status, runner: String) {
        if pending[runner] == nil { pending[runner] = status }
    }

    /// Ends the runner's writer early (shutdown); what is pending stays for nobody.
    mutating func abandon(runner: String) {
        writing.remove(runner)
    }
}
