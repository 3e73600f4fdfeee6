import Foundation
import Resources

/// The columns `steady get` prints for each kind: `NAME`, `READY` (for kinds with status), the kind's own
/// columns, then `AGE`; `-o wide` adds more after `AGE`, as kubectl does.
public enum ResourceColumns {
    /// One column: its header and how to compute a cell.
    struct Column: Sendable {
        var header: String
        var value: @Sendable (JSONValue) -> String
    }

    /// The header cells for a kind.
    public static func headers(for info: KindInfo, wide: Bool = false) -> [String] {
        var headers = ["NAME"]
        if info.hasStatus { headers.append("READY") }
        headers += specific(for: info.kind).map(\.header)
        headers.append("AGE")
        if wide { headers += extra(for: info.kind).map(\.header) }
        return headers
    }

    /// The cells of one object, in the order of ``headers(for:wide:)``.
    public static func row(for info: KindInfo, object: JSONValue, wide: Bool = false, now: Date = Date()) -> [String] {
        var cells = [object["metadata"]?["name"]?.stringValue ?? ""]
        if info.hasStatus { cells.append(ready(object)) }
        cells += specific(for: info.kind).map { $0.value(object) }
        cells.append(HumanDuration.age(of: object["metadata"]?["creationTimestamp"]?.stringValue, now: now))
        if wide { cells += extra(for: info.kind).map { $0.value(object) } }
        return cells
    }

    /// A table of objects of one kind.
    public static func table(
        for info: KindInfo, objects: [JSONValue], wide: Bool = false, now: Date = Date()
    ) -> TextTable {
        TextTable(
            headers: headers(for: info, wide: wide),
            rows: objects.map { row(for: info, object: $0, wide: wide, now: now) })
    }

    /// The status (`True`, `False`, `Unknown`) of the `Ready` condition, or empty when there is none.
    public static func ready(_ object: JSONValue) -> String {
        conditionStatus(object, type: "Ready")
    }

    /// The status of the condition of `type`, or empty when there is none.
    public static func conditionStatus(_ object: JSONValue, type: String) -> String {
        condition(object, type: type)?["status"]?.stringValue ?? ""
    }

    /// The condition of `type` in `status.conditions`.
    public static func condition(_ object: JSONValue, type: String) -> JSONValue? {
        object["status"]?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == type }
    }

    // MARK: Kinds

    private static func specific(for kind: String) -> [Column] {
        switch kind {
        case "Route":
            return [
                Column(header: "ACTIONS") { list($0["spec"]?["actions"], limit: 40) },
                Column(header: "INPUT") { object in
                    let input = object["spec"]?["input"]?.stringValue ?? ""
                    return input.isEmpty ? "<all>" : truncate(singleLine(input), to: 50)
                },
            ]
        case "Action":
            return [Column(header: "TYPE") { $0["spec"]?["type"]?.stringValue ?? "" }]
        case "Runner":
            return [
                Column(header: "CONNECTED") { conditionStatus($0, type: "Connected") },
                Column(header: "SYNCED") { conditionStatus($0, type: "Synced") },
            ]
        case "RemoteRun":
            return [
                Column(header: "PHASE") { $0["status"]?["phase"]?.stringValue ?? "" },
                Column(header: "SUCCEEDED/TOTAL") { object in
                    let counts = object["status"]?["counts"]
                    let results = object["status"]?["results"]?.arrayValue ?? []
                    let succeeded =
                        counts?["succeeded"]?.intValue
                        ?? Int64(results.filter { $0["phase"]?.stringValue == "Succeeded" }.count)
                    let total = counts?["total"]?.intValue ?? Int64(results.count)
                    return "\(succeeded)/\(total)"
                },
            ]
        case "Assignment":
            return [
                Column(header: "RUNNERS") { object in
                    String(object["status"]?["matchedRunners"]?.arrayValue?.count ?? 0)
                }
            ]
        case "Template":
            return [Column(header: "TYPE") { $0["spec"]?["type"]?.stringValue ?? "" }]
        case "Secret":
            return [Column(header: "KEYS") { String($0["data"]?.objectValue?.count ?? 0) }]
        case "GitRepository":
            return [
                Column(header: "URL") { $0["spec"]?["url"]?.stringValue ?? "" },
                Column(header: "REVISION") { $0["status"]?["lastAppliedRevision"]?.stringValue ?? "" },
            ]
        default:
            return []
        }
    }

    private static func extra(for kind: String) -> [Column] {
        switch kind {
        case "Route":
            return [
                Column(header: "TEMPLATE") { $0["spec"]?["template"]?.stringValue ?? "<none>" },
                Column(header: "RUNNERS") { list($0["status"]?["placement"]?["runners"], limit: 40) },
                Column(header: "MATCHED") { object in
                    object["status"]?["matchedEvents"]?.intValue.map { String($0) } ?? "0"
                },
            ]
        case "Action":
            return [
                Column(header: "PLACEMENT") { object in
                    let placement = object["status"]?["placement"]
                    var parts: [String] = []
                    if placement?["controller"]?.boolValue == true { parts.append("controller") }
                    parts += (placement?["runners"]?.arrayValue ?? []).compactMap(\.stringValue)
                    return parts.isEmpty ? "<none>" : truncate(parts.joined(separator: ","), to: 40)
                },
                Column(header: "LAST-RUN") { object in
                    guard let last = object["status"]?["lastExecution"] else { return "<none>" }
                    let result = last["succeeded"]?.boolValue.map { $0 ? "ok" : "failed" } ?? "?"
                    return "\(result) \(HumanDuration.age(of: last["time"]?.stringValue)) ago"
                },
            ]
        case "Runner":
            return [
                Column(header: "VERSION") { $0["status"]?["agentVersion"]?.stringValue ?? "" },
                Column(header: "HOSTNAME") { $0["status"]?["hostname"]?.stringValue ?? "" },
                Column(header: "HEARTBEAT") { object in
                    guard let time = object["status"]?["lastHeartbeatTime"]?.stringValue else { return "<never>" }
                    return HumanDuration.age(of: time) + " ago"
                },
                Column(header: "LABELS") { labels($0) },
            ]
        case "RemoteRun":
            return [
                Column(header: "FAILED") { object in
                    object["status"]?["counts"]?["failed"]?.intValue.map { String($0) } ?? "0"
                },
                Column(header: "TARGET") { target($0["spec"]?["target"]) },
            ]
        case "Assignment":
            return [
                Column(header: "ROUTES") { list($0["spec"]?["routes"], limit: 40) },
                Column(header: "ACTIONS") { list($0["spec"]?["actions"], limit: 40) },
            ]
        case "Template":
            return [Column(header: "TITLE") { truncate(singleLine($0["spec"]?["title"]?.stringValue ?? ""), to: 40) }]
        case "Secret":
            return [Column(header: "TYPE") { $0["type"]?.stringValue ?? "Opaque" }]
        case "GitRepository":
            return [
                Column(header: "REF") { object in
                    let ref = object["spec"]?["ref"]
                    if let branch = ref?["branch"]?.stringValue { return "branch:\(branch)" }
                    if let tag = ref?["tag"]?.stringValue { return "tag:\(tag)" }
                    if let commit = ref?["commit"]?.stringValue { return "commit:\(commit.prefix(12))" }
                    return "<default>"
                },
                Column(header: "PATH") { $0["spec"]?["path"]?.stringValue ?? "" },
                Column(header: "SUSPENDED") { $0["spec"]?["suspend"]?.boolValue == true ? "True" : "False" },
            ]
        default:
            return []
        }
    }

    // MARK: Cells

    static func list(_ value: JSONValue?, limit: Int) -> String {
        let items = (value?.arrayValue ?? []).compactMap(\.stringValue)
        return items.isEmpty ? "<none>" : truncate(items.joined(separator: ","), to: limit)
    }

    static func labels(_ object: JSONValue) -> String {
        let labels = (object["metadata"]?["labels"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        if labels.isEmpty { return "<none>" }
        return labels.keys.sorted().map { "\($0)=\(labels[$0] ?? "")" }.joined(separator: ",")
    }

    static func target(_ target: JSONValue?) -> String {
        guard let target else { return "<none>" }
        if target["all"]?.boolValue == true { return "all" }
        if let runners = target["runners"]?.arrayValue, !runners.isEmpty {
            return truncate(runners.compactMap(\.stringValue).joined(separator: ","), to: 40)
        }
        if target["runnerSelector"] != nil { return "selector" }
        return "<none>"
    }

    /// At most `limit` characters, ending in `...` when cut.
    public static func truncate(_ text: String, to limit: Int) -> String {
        guard text.count > limit, limit > 3 else { return text }
        return String(text.prefix(limit - 3)) + "..."
    }

    static func singleLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: " ")
    }
}
