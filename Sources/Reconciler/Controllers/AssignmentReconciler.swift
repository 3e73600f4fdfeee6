import Resources

/// Reports whether an Assignment's Routes, Actions and Runners exist, which Runners it matches, and whether they
/// all hold what it places.
///
/// `status.matchedRunners` holds the sorted names of the Runners named in `spec.runners` (that exist) or
/// selected by `spec.runnerSelector` (the first 100; `matchedRunnerCount` counts them all); `status.syncedRunners` how many of them hold its routes and actions at their
/// current generation. Ready (and Synced) only when every matched Runner does.
public struct AssignmentReconciler: StatusReconciler {
    /// Resolves which Runners the Assignment matches.
    public let placements: PlacementResolver

    /// Creates a reconciler sharing `placements` with the other reconcilers.
    public init(placements: PlacementResolver) {
        self.placements = placements
    }

    public var info: KindInfo { Kinds.assignment }

    public func status(of object: JSONValue, in cache: ObjectCache) throws -> JSONValue {
        let spec = object["spec"]
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        var missing: [String] = []
        for (noun, kind, field) in [
            ("route", RouteSpec.kind, "routes"), ("action", ActionSpec.kind, "actions"),
            ("runner", RunnerSpec.kind, "runners"),
        ] {
            let absent = StatusReport.unique(StatusReport.strings(spec?[field])).filter {
                !cache.contains(kind: kind, name: $0)
            }
            if !absent.isEmpty { missing.append(ReadinessProblem.missing(noun, absent, reason: "").message) }
        }
        var problems =
            missing.isEmpty
            ? [] : [ReadinessProblem(reason: "MissingReference", message: missing.joined(separator: "; "))]
        let placed = Set(
            StatusReport.strings(spec?["routes"]).map { ObjectKey(kind: RouteSpec.kind, name: $0) }
                + StatusReport.strings(spec?["actions"]).map { ObjectKey(kind: ActionSpec.kind, name: $0) })
        let placement = placements.placement(of: placed, by: [name], in: cache)
        let generation = StatusReport.generation(of: object)
        let synced = placement.syncedCondition(generation: generation, what: "its routes and actions")
        if let synced, synced.status != .true {
            problems.append(ReadinessProblem(reason: synced.reason, message: synced.message))
        }
        var fields: [String: JSONValue] = [
            "matchedRunners": placement.listedRunners, "matchedRunnerCount": .int(Int64(placement.runners.count)),
        ]
        fields["syncedRunners"] = placement.syncedRunners.map { .int(Int64($0)) }
        return try StatusReport.status(
            of: object, problems: problems,
            readyMessage: placement.syncedRunners == nil
                ? "every referenced route, action and runner exists"
                : "every referenced route, action and runner exists and every matched runner holds them",
            fields: fields, conditions: synced.map { [$0] } ?? [])
    }
}
