import Foundation
import Resources

/// What the controller knows of one GitRepository, and what to do next: a value that does no I/O.
///
/// Triggers: a spec change (url, ref, path... — reconciled at once, whatever the revision), a new
/// `steady.dev/requestedAt` annotation (the same), a webhook or the interval (which sync only when the remote
/// revision moved). At most one sync runs per repository, with at most one more queued behind it: a burst of
/// webhooks costs two syncs at most.
struct GitSourceState: Sendable {
    /// What a sync must do.
    struct Sync: Sendable, Equatable {
        /// Fetch and apply even when the remote revision is the last one attempted (the spec changed, or a person
        /// asked).
        var isForced: Bool
        /// The request annotation being answered, written back as `lastHandledReconcileAt`.
        var request: String?
    }

    /// The spec and generation last seen.
    private(set) var spec: GitRepositorySpec?
    private(set) var generation: Int64?
    /// The generation the last sync ran for.
    private(set) var syncedGeneration: Int64?
    /// The last request annotation seen, and the last one answered.
    private(set) var requestedAt: String?
    private(set) var handledRequest: String?
    /// The commit of the last sync that got as far as resolving a revision.
    private(set) var attemptedCommit: String?
    /// Whether the last sync failed in git (the remote, credentials, a timeout) or could not apply everything (an
    /// object another source manages, an API error): the next poll tries again even when the revision did not
    /// move. A commit refused as invalid is not retried: the same tree would be refused again.
    private(set) var needsRetry = false
    private(set) var isRunning = false
    private(set) var queued: Sync?
    /// When the interval next polls; nil while suspended or running.
    private(set) var nextPoll: ContinuousClock.Instant?

    /// The interval between polls (1 minute by default).
    var interval: Duration { spec?.interval?.duration ?? .seconds(60) }

    /// The object changed (or was first seen): a new generation or request syncs now.
    mutating func observe(
        spec: GitRepositorySpec, generation: Int64?, requestedAt: String?, status: GitRepositorySpec.Status?
    ) -> Sync? {
        let isFirst = self.spec == nil
        self.spec = spec
        self.generation = generation
        self.requestedAt = requestedAt
        if isFirst {
            handledRequest = status?.lastHandledReconcileAt
            // A restart resumes where the status says it was: the last attempted commit is not re-applied unless
            // something asks for it.
            if status?.observedGeneration == generation, let revision = status?.lastAttemptedRevision {
                attemptedCommit = revision.split(separator: ":").last.map(String.init)
                syncedGeneration = generation
            }
        }
        if spec.suspend == true {
            nextPoll = nil
            return nil
        }
        let isRequested = requestedAt != nil && requestedAt != handledRequest
        if generation != syncedGeneration || isRequested {
            return start(Sync(isForced: true, request: isRequested ? requestedAt : nil))
        }
        if isFirst { return start(Sync(isForced: false, request: nil)) }
        return nil
    }

    /// The interval ran out.
    mutating func pollDue(now: ContinuousClock.Instant) -> Sync? {
        guard let nextPoll, nextPoll <= now, spec?.suspend != true else { return nil }
        return start(Sync(isForced: false, request: nil))
    }

    /// A webhook arrived: look now.
    mutating func webhook() -> Sync? {
        guard spec?.suspend != true else { return nil }
        return start(Sync(isForced: false, request: nil))
    }

    /// The running sync ended. Returns the queued sync, if any, to start now.
    mutating func finished(
        _ sync: Sync, result: GitSync.Result, now: ContinuousClock.Instant, jitter: Double
    ) -> Sync? {
        isRunning = false
        switch result {
        case .attempted(let commit):
            attemptedCommit = commit
            needsRetry = false
        case .applyFailed(let commit):
            attemptedCommit = commit
            needsRetry = true
        case .gitFailed:
            needsRetry = true
        }
        if syncedGeneration == nil { syncedGeneration = generation }
        // A little jitter (±10%), so that sources created together do not poll together.
        let spread = interval * (0.9 + 0.2 * min(max(jitter, 0), 1))
        nextPoll = spec?.suspend == true ? nil : now + spread
        guard let next = queued else { return nil }
        queued = nil
        return start(next)
    }

    /// Whether a sync that resolved `commit` has anything to do.
    func needsApply(_ sync: Sync, commit: String) -> Bool {
        sync.isForced || needsRetry || commit != attemptedCommit
    }

    private mutating func start(_ sync: Sync) -> Sync? {
        guard !isRunning else {
            // One queued at most: a forced one wins over a poll.
            if let queued {
                self.queued = Sync(
                    isForced: queued.isForced || sync.isForced, request: sync.request ?? queued.request)
            } else {
                queued = sync
            }
            return nil
        }
        isRunning = true
        nextPoll = nil
        // What this sync answers is answered from now on: changes that arrive while it runs (its own status
        // writes among them) do not queue another.
        if sync.isForced { syncedGeneration = generation }
        if let request = sync.request { handledRequest = request }
        return sync
    }
}
