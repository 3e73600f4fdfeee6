import Resources
import Synchronization

/// Answers where routes and actions run: which Assignments name them and which Runners those Assignments match,
/// and, with a ``RunnerSyncIndex``, how many of those Runners hold them.
///
/// An Assignment matches the Runners it names (that exist) and those its `runnerSelector` selects. Matching a
/// selector scans every Runner, so results are memoized per Assignment until its spec changes or a Runner is
/// added, removed or relabelled; thousands of routes placed by the same Assignment cost one scan, and status
/// writes (of the Assignment, or of thousands of Runners syncing) cost none.
public final class PlacementResolver: Sendable {
    private struct Memo {
        /// The Assignment's `spec`: its status changes as runners sync, and must not invalidate the memo.
        var assignmentSpec: JSONValue?
        var runnersVersion: Int
        var runners: [String]
    }

    /// Where some objects are placed and how many of those Runners hold them.
    public struct Placement: Sendable, Equatable {
        /// The Runners the placing Assignments match, sorted.
        public var runners: [String]
        /// How many of ``runners`` hold, in the slice their agent last reported, every placed object at its current
        /// generation; nil when the controller tracks no agents.
        public var syncedRunners: Int?

        /// The names a status lists: the first ``listedRunnerLimit`` of ``runners``. A status naming every runner
        /// of a large fleet would be large, and costly to write each time one more runner syncs.
        public var listedRunners: JSONValue {
            StatusReport.array(Array(runners.prefix(PlacementResolver.listedRunnerLimit)))
        }

        /// Whether every Runner holds what is placed on it (true when sync is not tracked).
        public var isSynced: Bool { syncedRunners.map { $0 >= runners.count } ?? true }

        /// The `Synced` condition: True when every Runner holds the objects' current generations; nil when sync is
        /// not tracked. `what` names the objects in the message, e.g. `the route and its runner actions`.
        func syncedCondition(generation: Int64, what: String) -> Condition? {
            guard let synced = syncedRunners else { return nil }
            if runners.isEmpty {
                return Condition(
                    type: "Synced", status: .true, reason: "NoRunners", message: "no runner takes \(what)",
                    observedGeneration: generation)
            }
            let held = "\(synced) of \(runners.count) runners hold \(what) at their current generation"
            return Condition(
                type: "Synced", status: isSynced ? .true : .false, reason: isSynced ? "Synced" : "SyncPending",
                message: held, observedGeneration: generation)
        }
    }

    /// How many runner names a status lists at most; a count gives the total.
    public static let listedRunnerLimit = 100

    private let memos = Mutex<[String: Memo]>([:])
    /// What each runner's agent holds; nil when no agent gateway runs beside the reconcilers.
    public let syncIndex: RunnerSyncIndex?

    /// Creates a resolver with an empty memo, counting synced runners in `syncIndex` when given.
    public init(syncIndex: RunnerSyncIndex? = nil) {
        self.syncIndex = syncIndex
    }

    /// The names of the Assignments that name `key` (a Route or an Action), sorted.
    public func assignments(naming key: ObjectKey, in cache: ObjectCache) -> [String] {
        cache.referrers(of: key).filter { $0.kind == AssignmentSpec.kind }.map(\.name).sorted()
    }

    /// The sorted names of the Runners the Assignment matches; empty when it does not exist or cannot be read.
    public func matchedRunners(ofAssignment name: String, in cache: ObjectCache) -> [String] {
        guard let entry = cache.entry(kind: AssignmentSpec.kind, name: name) else { return [] }
        let selector = entry.value["spec"]?["runnerSelector"]
        if selector == nil || selector?.isNull == true {
            return StatusReport.unique(StatusReport.strings(entry.value["spec"]?["runners"]))
                .filter { cache.contains(kind: RunnerSpec.kind, name: $0) }.sorted()
        }
        let runnersVersion = cache.version(of: RunnerSpec.kind)
        let memo = memos.withLock { $0[name] }
        if let memo, memo.assignmentSpec == entry.value["spec"], memo.runnersVersion == runnersVersion {
            return memo.runners
        }
        guard let spec = try? entry.value["spec"]?.decode(as: AssignmentSpec.self) else { return [] }
        let runners = cache.withEntries(kind: RunnerSpec.kind) { entries in
            entries.compactMap { runnerName, runner -> String? in
                spec.matches(runnerName: runnerName, labels: ObjectService.labels(of: runner.value)) ? runnerName : nil
            }
        }.sorted()
        memos.withLock {
            $0[name] = Memo(assignmentSpec: entry.value["spec"], runnersVersion: runnersVersion, runners: runners)
        }
        return runners
    }

    /// Where `objects` (Routes and Actions) are placed by `assignments`, and how many of those Runners hold them.
    ///
    /// A Runner counts as synced when its agent holds, at their current generations, every one of `objects` that
    /// an Assignment matching it names; objects that do not exist are not expected anywhere.
    public func placement(
        of objects: Set<ObjectKey>, by assignments: some Sequence<String>, in cache: ObjectCache
    ) -> Placement {
        var groups: [(placed: [SliceKey: Int64], runners: [String])] = []
        for assignment in assignments {
            guard let spec = cache.get(kind: AssignmentSpec.kind, name: assignment)?["spec"] else { continue }
            var placed: [SliceKey: Int64] = [:]
            for (kind, field) in [(RouteSpec.kind, "routes"), (ActionSpec.kind, "actions")] {
                for name in StatusReport.strings(spec[field]) where objects.contains(ObjectKey(kind: kind, name: name)) {
                    guard let object = cache.get(kind: kind, name: name) else { continue }
                    placed[SliceKey(kind: kind, name: name)] = StatusReport.generation(of: object)
                }
            }
            groups.append((placed, matchedRunners(ofAssignment: assignment, in: cache)))
        }
        // One Assignment (the usual case): its sorted, memoized runners and one expectation for all of them,
        // instead of a map per runner, for every reconcile while a large fleet syncs.
        if groups.count == 1, let group = groups.first {
            return Placement(
                runners: group.runners, syncedRunners: syncIndex?.countHolding(group.placed, among: group.runners))
        }
        var expected: [String: [SliceKey: Int64]] = [:]
        for group in groups {
            for runner in group.runners {
                expected[runner, default: [:]].merge(group.placed) { current, _ in current }
            }
        }
        return Placement(runners: expected.keys.sorted(), syncedRunners: syncIndex?.countHolding(expected))
    }

    /// Drops the memo of an Assignment that no longer exists.
    func forget(assignment name: String) {
        _ = memos.withLock { $0.removeValue(forKey: name) }
    }
}
