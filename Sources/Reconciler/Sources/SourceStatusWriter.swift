import Foundation
import Logging
import Resources

/// Writes a GitRepository's status: the fields given, merged over what is there, and conditions set with
/// Kubernetes' rules (the transition time kept while the status stays). Failures are logged, never fatal.
struct SourceStatusWriter: Sendable {
    let objects: ObjectService
    let logger: Logger

    /// Merges `fields` into the status and sets `conditions`; removes the condition types in `removing`.
    func write(
        _ name: String, fields: [String: JSONValue], conditions: [Condition], removing: Set<String> = []
    ) async {
        do {
            try await objects.updateStatus(
                Kinds.gitRepository, name: name, options: WriteOptions(fieldManager: ManifestSync.fieldManager)
            ) { current in
                var existing =
                    (try? current["status"]?["conditions"].map { try $0.decode(as: [Condition].self) }) ?? nil ?? []
                existing.removeAll { removing.contains($0.type) }
                let generation = current["metadata"]?["generation"]?.intValue
                for var condition in conditions {
                    condition.observedGeneration = generation
                    existing.set(condition)
                }
                var status = current["status"]?.objectValue ?? [:]
                for (key, value) in fields { status[key] = value }
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
