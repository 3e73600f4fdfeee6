import Resources

/// The agent's slice state machine: a value that takes slice messages and says what to do. No I/O.
///
/// It keeps two slices. The *applied* slice is the last good one, which the agent serves and persists. The
/// *received* slice is the newest the controller sent, which diffs are applied to even when it was rejected (the
/// controller's next diff is relative to what it sent, not to what the agent accepted). Every connection starts
/// from the applied slice, since that is the revision and digest the agent resumes from.
public struct SliceSynchronizer: Sendable {
    /// What the shell does after a message.
    public enum Directive: Sendable, Equatable {
        /// Nothing changed (a keep-alive).
        case none
        /// Persist this slice, then ``commit(_:)`` it (or ``failToPersist(_:)``), publish it and report.
        case apply(RunnerSlice)
        /// The sync status changed without a new slice to apply: report it.
        case report
        /// The slice held does not match the controller's: report, then reconnect asking for a snapshot.
        case resync
    }

    /// The last good slice: what the agent serves.
    public private(set) var applied: RunnerSlice
    /// The newest slice the controller sent on this connection, applied or not.
    public private(set) var received: RunnerSlice
    /// Whether the newest slice received is applied, and why not.
    public private(set) var status: SyncStatus = .pending
    /// Whether the next connection must ask for a full snapshot (after a digest mismatch).
    public private(set) var needsSnapshot = false
    private var problems: [SliceKey: SliceValidator.Problem] = [:]
    private let validator: SliceValidator

    /// Starts from the last good slice loaded from storage, if any.
    ///
    /// A loaded slice is validated again, since the agent's policy may have changed since it was saved (for
    /// example, restarted without `--allow-exec`); one that no longer passes is dropped, and the agent starts
    /// empty and asks for a snapshot. ``droppedLoadedSlice`` says why.
    public init(lastGood: RunnerSlice?, validator: SliceValidator) {
        self.validator = validator
        var start = lastGood ?? .empty
        var loadedProblems: [SliceKey: SliceValidator.Problem] = [:]
        for (key, object) in start.objects {
            if let problem = validator.problem(with: object, key: key) { loadedProblems[key] = problem }
        }
        if let summary = SliceValidator.summary(of: loadedProblems) {
            droppedLoadedSlice = summary
            start = .empty
        }
        applied = start
        received = start
    }

    /// Why the slice loaded from storage was not used, when it was not.
    public private(set) var droppedLoadedSlice: (reason: String, message: String)?

    /// The revision and digest to resume from: those of the applied slice, or nothing when the agent holds no
    /// slice from a controller yet or needs a snapshot.
    public var resumePoint: (revision: Int64, digest: String?) {
        if needsSnapshot || applied.revision == 0 { return (0, nil) }
        return (applied.revision, applied.digest)
    }

    /// Begins a new connection: diffs on it are relative to the applied slice.
    public mutating func startConnection() {
        received = applied
        problems = [:]
    }

    /// Handles one message of the slice stream.
    public mutating func handle(_ message: SliceMessage) -> Directive {
        switch message.type {
        case .keepalive:
            guard let digest = message.digest else { return .none }
            guard digest == received.digest else {
                return mismatch("a keep-alive carries digest \(digest) but the agent holds \(received.digest)")
            }
            guard message.revision != received.revision else { return retryingPersistence() }
            // Same content under a new revision (the controller restarted): adopt it.
            received.revision = message.revision
            return evaluate()
        case .snapshot:
            let candidate = RunnerSlice(revision: message.revision, objects: message.objects ?? [])
            if let digest = message.digest, digest != candidate.digest {
                return mismatch("the snapshot at revision \(message.revision) has digest \(candidate.digest), "
                    + "not \(digest) as sent")
            }
            received = candidate
            needsSnapshot = false
            problems = [:]
            for (key, object) in candidate.objects {
                if let problem = validator.problem(with: object, key: key) { problems[key] = problem }
            }
            return evaluate()
        case .diff:
            let upserts = message.objects ?? []
            let removed = message.removed ?? []
            let candidate = received.applying(upserts: upserts, removed: removed, revision: message.revision)
            if let digest = message.digest, digest != candidate.digest {
                return mismatch("after applying the diff from revision \(message.baseRevision ?? 0) to "
                    + "\(message.revision) onto revision \(received.revision), the slice has digest "
                    + "\(candidate.digest), not \(digest) as sent")
            }
            received = candidate
            for key in removed { problems[key] = nil }
            for object in upserts { problems[object.key] = validator.problem(with: object.object, key: object.key) }
            return evaluate()
        }
    }

    /// Records that `slice` (from an ``Directive/apply(_:)``) is persisted: it becomes the applied slice.
    public mutating func commit(_ slice: RunnerSlice) {
        applied = slice
        status = .synced
    }

    /// Records that `slice` could not be persisted: the last good slice stays.
    public mutating func failToPersist(_ error: any Error) {
        status = .notSynced(
            reason: SliceValidator.Reason.storageFailed, message: "cannot save the slice: \(error)")
    }

    /// A slice that could not be saved (a full or failing disk) is tried again on each keep-alive, so that it is
    /// applied once the disk has room again, without waiting for the next change.
    private func retryingPersistence() -> Directive {
        guard status.reason == SliceValidator.Reason.storageFailed, received != applied else { return .none }
        return .apply(received)
    }

    private mutating func evaluate() -> Directive {
        if let summary = SliceValidator.summary(of: problems) {
            let next = SyncStatus.notSynced(reason: summary.reason, message: summary.message)
            guard next != status else { return .none }
            status = next
            return .report
        }
        if received.revision == applied.revision && received.digest == applied.digest {
            guard status != .synced else { return .none }
            status = .synced
            return .report
        }
        return .apply(received)
    }

    private mutating func mismatch(_ detail: String) -> Directive {
        status = .notSynced(reason: SliceValidator.Reason.digestMismatch, message: detail)
        needsSnapshot = true
        received = applied
        problems = [:]
        return .resync
    }
}
