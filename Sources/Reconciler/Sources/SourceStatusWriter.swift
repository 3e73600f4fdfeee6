import Foundation
import Logging
import Resources

/// Writes a GitRepository's status: the fields given, merged over what is there, and conditions set with
/// Kubernetes' rules (the transition time kept while the status stays). Failures are logged, never fatal.
struct SourceStatusWriter: Sendable {
    /// What to change in one status: fields to merge (`.null` deletes one), conditions to set, and condition types
    /// to remove.
    struct Change: Sendable {
        var fields: [String: JSONValue] = [:]
        var conditions: [Condition] = []
        var removing: Set<String> = []
    }

    let objects: ObjectService
    let logger: Logger

    /// Merges `fields` into the status and sets `conditions`; removes the condition types in `removing`.
    func write(
        _ name: String, fields: [String: JSONValue], conditions: [Condition], removing: Set<String> = []
    ) async {
        await write(name) { _ in Change(fields: fields, conditions: conditions, removing: removing) }
    }

    /// Writes the change that `compute` makes from the status as stored now (computed again when a concurrent
    /// write wins the race).
    func write(_ name: String, _ compute: (GitRepositorySpec.Status) -> Change) async {
        do {
            try await objects.updateStatus(
                Kinds.gitRepository, name: name, options: WriteOptions(fieldManager: ManifestSync.fieldManager)
            ) { current in
                let stored = (try? current["status"].map { try $0.decode(as: GitRepositorySpec.Status.self) }) ?? nil
                let change = compute(stored ?? GitRepositorySpec.Status())
                var existing = stored?.conditions ?? []
                existing.removeAll { change.removing.contains($0.type) }
                let generation = current["metadata"]?["generation"]?.intValue
                for var condition in change.conditions {
                    condition.observedGeneration = generation
                    existing.set(condition)
                }
                var status = current["status"]?.objectValue ?? [:]
                for (key, value) in change.fields { status[key] = value }
                status["conditions"] = try JSONValue(encoding: existing)
                status["observedGeneration"] = current["metadata"]?["generation"]
                return .object(status)
            }
        } catch {
            logger.error(
                "cannot record the status of a source",
                metadata: ["steady.gitrepository": "\(name)", "steady.error": "\(error)"])
        }
    }
}
