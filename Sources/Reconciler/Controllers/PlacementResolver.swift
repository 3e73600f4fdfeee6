import Resources
import Synchronization

/// Answers where routes and actions run: which Assignments name them and which Runners those Assignments match.
///
/// An Assignment matches the Runners it names (that exist) and those its `runnerSelector` selects. Matching a
/// selector scans every Runner, so results are memoized per Assignment until the Assignment or any Runner
/// changes; thousands of routes placed by the same Assignment cost one scan.
public final class PlacementResolver: Sendable {
    private struct Memo {
        var assignmentRevision: Int64
        var runnersVersion: Int
        var runners: [String]
    }

    private let memos = Mutex<[String: Memo]>([:])

    /// Creates a resolver with an empty memo.
    public init() {}

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
        if let memo, memo.assignmentRevision == entry.revision, memo.runnersVersion == runnersVersion {
            return memo.runners
        }
        guard let spec = try? entry.value["spec"]?.decode(as: AssignmentSpec.self) else { return [] }
        let runners = cache.withEntries(kind: RunnerSpec.kind) { entries in
            entries.compactMap { runnerName, runner -> String? in
                let labels = (runner.value["metadata"]?["labels"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
                return spec.matches(runnerName: runnerName, labels: labels) ? runnerName : nil
            }
        }.sorted()
        memos.withLock {
            $0[name] = Memo(assignmentRevision: entry.revision, runnersVersion: runnersVersion, runners: runners)
        }
        return runners
    }

    /// The sorted union of the Runners matched by `assignments`.
    public func runners(ofAssignments assignments: some Sequence<String>, in cache: ObjectCache) -> [String] {
        var runners: Set<String> = []
        for assignment in assignments {
            runners.formUnion(matchedRunners(ofAssignment: assignment, in: cache))
        }
        return runners.sorted()
    }

    /// Drops the memo of an Assignment that no longer exists.
    func forget(assignment name: String) {
        _ = memos.withLock { $0.removeValue(forKey: name) }
    }
}
