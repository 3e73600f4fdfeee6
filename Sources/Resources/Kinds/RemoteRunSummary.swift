/// What a RemoteRun object says about its progress, in the words `steady run` prints and the `log` subresource
/// uses to know that no more output is coming. Reads the object as JSON, as clients and the API see it.
public enum RemoteRunSummary {
    /// Whether the run is over: its `Complete` or `Failed` condition is True, or its phase is final.
    public static func isOver(_ object: JSONValue) -> Bool {
        for type in ["Complete", "Failed"] where object.condition(type)?["status"]?.stringValue == "True" {
            return true
        }
        guard let phase = object["status"]?["phase"]?.stringValue.flatMap(RemoteRunSpec.Phase.init(rawValue:)) else {
            return false
        }
        return phase.isFinal
    }

    /// The runners the run targets, as its status lists them.
    public static func runners(of object: JSONValue) -> [String] {
        (object["status"]?["results"]?.arrayValue ?? []).compactMap { $0["runner"]?.stringValue }
    }

    /// Whether every targeted runner succeeded (and there was at least one).
    public static func isSuccess(_ object: JSONValue) -> Bool {
        let phases = results(of: object).map(\.phase)
        return !phases.isEmpty && phases.allSatisfy { $0 == .succeeded }
    }

    /// `3 pending, 2 running, 15 succeeded of 20`: the phases with runners in them, for progress lines.
    public static func progress(_ object: JSONValue) -> String {
        let results = results(of: object)
        let counts = RemoteRunSpec.Counts(phases: results.map(\.phase))
        let parts = RemoteRunSpec.Phase.allCases.filter { counts[$0] > 0 }.map { "\(counts[$0]) \(words($0))" }
        return parts.isEmpty ? "no runners resolved yet" : parts.joined(separator: ", ") + " of \(results.count)"
    }

    /// The one line `steady run` ends with: `run-x: 19/20 succeeded, 1 failed (web-3: exit 2)`.
    ///
    /// Every phase other than Succeeded with runners in it is counted, with up to ``maximumNamedRunners`` of its
    /// runners and why (exit code, signal, or reason); a run Failed by a reason of its own says so at the end.
    public static func line(name: String, _ object: JSONValue) -> String {
        let results = results(of: object)
        let succeeded = results.filter { $0.phase == .succeeded }.count
        var line = "\(name): \(succeeded)/\(results.count) succeeded"
        for phase in RemoteRunSpec.Phase.allCases where phase != .succeeded {
            let matching = results.filter { $0.phase == phase }
            guard !matching.isEmpty else { continue }
            line += ", \(matching.count) \(words(phase))"
            var named = matching.prefix(maximumNamedRunners).map { "\($0.runner): \(cause($0))" }
            if matching.count > maximumNamedRunners { named.append("...") }
            line += " (\(named.joined(separator: ", ")))"
        }
        if let failed = object.condition("Failed"), failed["status"]?.stringValue == "True",
            let reason = failed["reason"]?.stringValue, !reason.isEmpty
        {
            line += "; run Failed (\(reason))"
        }
        return line
    }

    /// How many failing runners the summary line names per phase.
    public static let maximumNamedRunners = 5

    private static func results(of object: JSONValue) -> [RemoteRunSpec.RunnerResult] {
        (object["status"]?["results"]?.arrayValue ?? []).compactMap { value in
            guard let runner = value["runner"]?.stringValue,
                let phase = value["phase"]?.stringValue.flatMap(RemoteRunSpec.Phase.init(rawValue:))
            else { return nil }
            var result = RemoteRunSpec.RunnerResult(runner: runner, phase: phase)
            result.exitCode = value["exitCode"]?.intValue.map { Int($0) }
            result.signal = value["signal"]?.intValue.map { Int($0) }
            result.reason = value["reason"]?.stringValue
            return result
        }
    }

    private static func cause(_ result: RemoteRunSpec.RunnerResult) -> String {
        if let exitCode = result.exitCode, result.phase == .failed { return "exit \(exitCode)" }
        if let signal = result.signal { return "signal \(signal)" }
        if let reason = result.reason, !reason.isEmpty { return reason }
        if let exitCode = result.exitCode { return "exit \(exitCode)" }
        return words(result.phase)
    }

    private static func words(_ phase: RemoteRunSpec.Phase) -> String {
        switch phase {
        case .timedOut: "timed out"
        default: phase.rawValue.lowercased()
        }
    }
}
