import Resources

/// Reports which Runners a RemoteRun targets, and whether its target resolves.
///
/// `Ready` means the request is accepted: every runner it names exists, or its selector (or `all`) matches at
/// least one. `status.results` holds one entry per targeted runner, `Pending` until it starts; entries of runners
/// that started keep their phase, so results that runners report are never overwritten here.
public struct RemoteRunReconciler: StatusReconciler {
    public init() {}

    public var info: KindInfo { Kinds.remoteRun }

    public func status(of object: JSONValue, in cache: ObjectCache) throws -> JSONValue {
        let spec = try object["spec"]?.decode(as: RemoteRunSpec.self)
        var problems: [ReadinessProblem] = []
        var targeted: [String] = []
        if let target = spec?.target {
            if let named = target.runners {
                let unique = StatusReport.unique(named)
                let absent = unique.filter { !cache.contains(kind: RunnerSpec.kind, name: $0) }
                if !absent.isEmpty { problems.append(.missing("runner", absent, reason: "MissingRunner")) }
                targeted = unique.filter { cache.contains(kind: RunnerSpec.kind, name: $0) }
            } else {
                targeted = cache.withEntries(kind: RunnerSpec.kind) { entries in
                    entries.compactMap { name, runner -> String? in
                        let labels = ObjectService.labels(of: runner.value)
                        return target.all == true || target.runnerSelector?.matches(labels) == true ? name : nil
                    }
                }
                if targeted.isEmpty {
                    let field = target.all == true ? "target.all" : "target.runnerSelector"
                    problems.append(ReadinessProblem(reason: "NoMatchingRunners", message: "\(field) matches no runner"))
                }
            }
        }
        targeted.sort()

        let recorded = (object["status"]?["results"]?.arrayValue ?? []).compactMap {
            try? $0.decode(as: RemoteRunSpec.RunnerResult.self)
        }
        // Once dispatch began the runners are fixed: the dispatcher owns every result. Before, a runner that
        // started keeps its result and one still pending leaves when it is no longer targeted.
        let phase = object["status"]?["phase"]?.stringValue ?? RemoteRunSpec.Phase.pending.rawValue
        let isDispatching = phase != RemoteRunSpec.Phase.pending.rawValue
        let kept = isDispatching ? recorded : recorded.filter { $0.phase != .pending }
        var results = Dictionary(kept.map { ($0.runner, $0) }, uniquingKeysWith: { first, _ in first })
        for runner in targeted where results[runner] == nil && !isDispatching {
            results[runner] = RemoteRunSpec.RunnerResult(runner: runner, phase: .pending)
        }
        let ordered = results.values.sorted { $0.runner < $1.runner }
        let counts = RemoteRunSpec.Counts(phases: ordered.map(\.phase))
        return try StatusReport.status(
            of: object, problems: problems,
            readyMessage: "accepted: targets \(Wording.count(targeted.count, "runner")): \(Self.list(targeted))",
            fields: [
                "phase": .string(phase), "counts": try JSONValue(encoding: counts),
                "results": try JSONValue(encoding: ordered),
            ])
    }

    /// `a, b, c` or `a, b, c and 7 more`.
    private static func list(_ names: [String]) -> String {
        names.count <= 5 ? names.joined(separator: ", ") : names.prefix(5).joined(separator: ", ") + " and \(names.count - 5) more"
    }
}
