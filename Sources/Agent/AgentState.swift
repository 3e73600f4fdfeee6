import Resources

/// What an agent holds now: the slice it serves, its revision, and whether it is in sync with the controller.
///
/// The event pipeline reads ``currentSlice``; the agent's loops drive the ``SliceSynchronizer`` inside.
public actor AgentState {
    private var synchronizer: SliceSynchronizer

    /// Starts from a last good slice (loaded from storage).
    public init(lastGood: RunnerSlice?, validator: SliceValidator) {
        synchronizer = SliceSynchronizer(lastGood: lastGood, validator: validator)
    }

    /// The last good slice: what the agent serves.
    public var currentSlice: RunnerSlice { synchronizer.applied }
    /// The revision of ``currentSlice`` (0 before the first slice).
    public var revision: Int64 { synchronizer.applied.revision }
    /// Whether the newest slice received is applied, and why not.
    public var syncStatus: SyncStatus { synchronizer.status }
    /// Whether the slice stream is connected now.
    public private(set) var isConnected = false
    /// The latest run on the Runner's own schedule, going or ended; sent in every report.
    public private(set) var lastRun: RunnerSpec.RunSummary?
    /// Why the slice loaded from storage was not used, when it was not.
    public var droppedLoadedSlice: (reason: String, message: String)? { synchronizer.droppedLoadedSlice }

    // MARK: Driven by the agent

    func startConnection() -> (revision: Int64, digest: String?) {
        synchronizer.startConnection()
        return synchronizer.resumePoint
    }

    func setConnected(_ connected: Bool) {
        isConnected = connected
    }

    func handle(_ message: SliceMessage) -> SliceSynchronizer.Directive {
        synchronizer.handle(message)
    }

    func commit(_ slice: RunnerSlice) {
        synchronizer.commit(slice)
        sliceChanged.signal()
    }

    /// Signalled whenever a new slice is applied, for the event pipeline's route table.
    public nonisolated let sliceChanged = WakeSignal()

    func failToPersist(_ error: any Error) {
        synchronizer.failToPersist(error)
    }

    func setLastRun(_ summary: RunnerSpec.RunSummary?) {
        lastRun = summary
    }

    /// The report to send now, or nil before the first slice message was handled.
    func makeReport(hostname: String, agentVersion: String) -> AgentReport? {
        let status = synchronizer.status
        guard status != .pending else { return nil }
        let applied = synchronizer.applied
        return AgentReport(
            hostname: hostname, agentVersion: agentVersion, observedSliceRevision: applied.revision,
            sliceDigest: applied.digest, synced: status.isSynced, reason: status.reason, message: status.message,
            lastRun: lastRun)
    }
}
