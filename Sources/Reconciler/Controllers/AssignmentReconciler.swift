import Resources

/// Reports whether an Assignment's Routes, Actions and Runners exist, and which Runners it matches.
///
/// `status.matchedRunners` holds the sorted names of the Runners named in `spec.runners` (that exist) or
/// selected by `spec.runnerSelector`.
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
        let problems =
            missing.isEmpty
            ? [] : [ReadinessProblem(reason: "MissingReference", message: missing.joined(separator: "; "))]
        let matched = placements.matchedRunners(ofAssignment: name, in: cache)
        return try StatusReport.status(
            of: object, problems: problems, readyMessage: "every referenced route, action and runner exists",
            fields: ["matchedRunners": StatusReport.array(matched)])
    }
}
