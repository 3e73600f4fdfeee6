import Resources

/// Reports whether an Action can run: every Secret key it references exists; and where it runs.
///
/// Only key presence is checked; values never reach the reconciler (the cache blanks them). `status.placement`
/// says whether the action runs on the controller (no Assignment names it), on which Runners (`runners`, the first
/// 100 by name, and `runnerCount`), and how many of
/// them hold its current generation (`syncedRunners`); the `Synced` condition is True once every one does.
public struct ActionReconciler: StatusReconciler {
    /// Resolves which Assignments and Runners place the action.
    public let placements: PlacementResolver

    /// Creates a reconciler sharing `placements` with the other reconcilers.
    public init(placements: PlacementResolver) {
        self.placements = placements
    }

    public var info: KindInfo { Kinds.action }

    public func status(of object: JSONValue, in cache: ObjectCache) throws -> JSONValue {
        let spec = try (object["spec"] ?? .null).decode(as: ActionSpec.self)
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        var problems: [ReadinessProblem] = []
        for reference in StatusReport.unique(spec.secretReferences) {
            guard let secret = cache.get(kind: Secret.kind, name: reference.name) else {
                problems.append(.missing("secret", [reference.name], reason: "MissingSecret"))
                continue
            }
            if secret["data"]?[reference.key] == nil && secret["stringData"]?[reference.key] == nil {
                problems.append(
                    ReadinessProblem(
                        reason: "MissingSecretKey",
                        message: "secret \"\(reference.name)\" has no key \"\(reference.key)\""))
            }
        }
        let key = ObjectKey(kind: ActionSpec.kind, name: name)
        let assignments = placements.assignments(naming: key, in: cache)
        let placement = placements.placement(of: [key], by: assignments, in: cache)
        var fields: JSONValue = [
            "controller": .bool(assignments.isEmpty), "runners": placement.listedRunners,
            "runnerCount": .int(Int64(placement.runners.count)),
        ]
        fields["syncedRunners"] = placement.syncedRunners.map { .int(Int64($0)) }
        let synced = placement.syncedCondition(generation: StatusReport.generation(of: object), what: "the action")
        return try StatusReport.status(
            of: object, problems: problems, readyMessage: "every referenced secret key exists",
            fields: ["placement": fields], conditions: synced.map { [$0] } ?? [])
    }
}
