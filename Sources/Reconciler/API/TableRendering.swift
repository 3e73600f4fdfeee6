import Foundation
import Resources

/// Server-side tables (`meta.k8s.io/v1 Table`): the one place the columns of each kind are defined.
///
/// kubectl and `steady get` ask for them, so both show `NAME`, `READY`, the kind's own columns and `AGE`, and
/// with `-o wide` the columns of priority 1 after those.
enum TableRendering {
    struct Column {
        var name: String
        var type = "string"
        var description: String
        /// 0: always shown; 1: shown by `-o wide`.
        var priority = 0
        var cell: (JSONValue) -> JSONValue
    }

    /// True when the Accept header prefers a Table.
    static func isRequested(accept: String?) -> Bool {
        guard let first = accept?.split(separator: ",").first else { return false }
        return first.contains("as=Table") && first.contains("g=meta.k8s.io")
    }

    static func table(_ objects: [JSONValue], info: KindInfo, resourceVersion: String?, now: Date = Date()) -> JSONValue {
        let columns = self.columns(for: info, now: now)
        let definitions = columns.map { column -> JSONValue in
            [
                "name": .string(column.name), "type": .string(column.type), "format": column.name == "Name" ? "name" : "",
                "description": .string(column.description), "priority": .int(Int64(column.priority)),
            ]
        }
        let rows = objects.map { object -> JSONValue in
            var metadata = object["metadata"] ?? [:]
            metadata["managedFields"] = nil
            return [
                "cells": .array(columns.map { $0.cell(object) }),
                "object": [
                    "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
                ],
            ]
        }
        var metadata: JSONValue = [:]
        if let resourceVersion { metadata["resourceVersion"] = .string(resourceVersion) }
        return [
            "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": .array(definitions), "rows": .array(rows),
        ]
    }

    /// `Name`, `Ready` (kinds with status), the kind's own columns, `Age`, then the wide ones.
    static func columns(for info: KindInfo, now: Date) -> [Column] {
        let name = Column(name: "Name", description: "Name of the object.") { $0["metadata"]?["name"] ?? "" }
        let ready = Column(name: "Ready", description: "The Ready condition.") { .string($0.conditionStatus("Ready")) }
        let age = Column(name: "Age", description: "Time since creation.") { object in
            .string(HumanDuration.age(of: object["metadata"]?["creationTimestamp"]?.stringValue, now: now))
        }
        return [name] + (info.hasStatus ? [ready] : []) + specific(for: info.kind) + [age]
            + wide(for: info.kind, now: now)
    }

    private static func specific(for kind: String) -> [Column] {
        switch kind {
        case RouteSpec.kind:
            return [
                Column(name: "Actions", description: "Actions run for matching events.") {
                    list($0["spec"]?["actions"], limit: 40)
                },
                Column(name: "Input", description: "The match expression.") { object in
                    let input = object["spec"]?["input"]?.stringValue ?? ""
                    return .string(input.isEmpty ? "<all>" : Wording.truncate(Wording.singleLine(input), to: 50))
                },
            ]
        case ActionSpec.kind, TemplateSpec.kind:
            return [Column(name: "Type", description: "The kind of action or template.") { $0["spec"]?["type"] ?? "" }]
        case RunnerSpec.kind:
            return [
                Column(name: "Connected", description: "Whether the agent is connected.") {
                    .string($0.conditionStatus("Connected"))
                },
                Column(name: "Synced", description: "Whether the agent applied its slice.") {
                    .string($0.conditionStatus("Synced"))
                },
            ]
        case RemoteRunSpec.kind:
            return [
                Column(name: "Phase", description: "Where the run is.") { $0["status"]?["phase"] ?? "" },
                Column(name: "Succeeded/Total", description: "Runners that succeeded out of all targeted.") { object in
                    let counts = object["status"]?["counts"]
                    let results = object["status"]?["results"]?.arrayValue ?? []
                    let succeeded =
                        counts?["succeeded"]?.intValue
                        ?? Int64(results.filter { $0["phase"]?.stringValue == "Succeeded" }.count)
                    let total = counts?["total"]?.intValue ?? Int64(results.count)
                    return .string("\(succeeded)/\(total)")
                },
            ]
        case AssignmentSpec.kind:
            return [
                Column(name: "Runners", type: "integer", description: "Runners it matches.") { object in
                    .int(Int64(object["status"]?["matchedRunners"]?.arrayValue?.count ?? 0))
                }
            ]
        case Secret.kind:
            return [
                Column(name: "Keys", type: "integer", description: "Number of keys.") { object in
                    .int(Int64(object["data"]?.objectValue?.count ?? 0))
                }
            ]
        case Kinds.execution.kind:
            return [
                Column(name: "Route", description: "The route that matched.") { $0["spec"]?["route"] ?? "" },
                Column(name: "Action", description: "The action attempted.") { $0["spec"]?["action"] ?? "" },
                Column(name: "Location", description: "Where it ran: controller or a runner.") {
                    $0["spec"]?["location"] ?? ""
                },
                Column(name: "Attempt", type: "integer", description: "1 for the first attempt.") {
                    $0["spec"]?["attempt"] ?? 0
                },
                Column(name: "Result", description: "Succeeded, Retrying or Failed.") { $0["spec"]?["result"] ?? "" },
                Column(name: "Duration", description: "How long the attempt took.") { object in
                    .string("\(object["spec"]?["durationMilliseconds"]?.intValue ?? 0)ms")
                },
            ]
        case GitRepositorySpec.kind:
            return [
                Column(name: "URL", description: "Where the manifests come from.") { $0["spec"]?["url"] ?? "" },
                Column(name: "Revision", description: "The last applied revision.") {
                    $0["status"]?["lastAppliedRevision"] ?? ""
                },
            ]
        default:
            return []
        }
    }

    /// The columns `-o wide` adds after `Age`.
    private static func wide(for kind: String, now: Date) -> [Column] {
        func column(_ name: String, _ description: String, _ cell: @escaping (JSONValue) -> JSONValue) -> Column {
            Column(name: name, description: description, priority: 1, cell: cell)
        }
        switch kind {
        case RouteSpec.kind:
            return [
                column("Template", "The template events are rendered with.") { $0["spec"]?["template"] ?? "<none>" },
                column("Runners", "Runners the route is placed on.") {
                    list($0["status"]?["placement"]?["runners"], limit: 40)
                },
                column("Matched", "Events the route matched.") {
                    .string(String($0["status"]?["matchedEvents"]?.intValue ?? 0))
                },
            ]
        case ActionSpec.kind:
            return [
                column("Placement", "Where the action runs.") { object in
                    let placement = object["status"]?["placement"]
                    var parts: [String] = []
                    if placement?["controller"]?.boolValue == true { parts.append("controller") }
                    parts += (placement?["runners"]?.arrayValue ?? []).compactMap(\.stringValue)
                    return .string(parts.isEmpty ? "<none>" : Wording.truncate(parts.joined(separator: ","), to: 40))
                },
                column("Last-Run", "The outcome and age of the last execution.") { object in
                    guard let last = object["status"]?["lastExecution"] else { return "<none>" }
                    let result = last["succeeded"]?.boolValue.map { $0 ? "ok" : "failed" } ?? "?"
                    return .string("\(result) \(HumanDuration.age(of: last["time"]?.stringValue, now: now)) ago")
                },
            ]
        case RunnerSpec.kind:
            return [
                column("Version", "The agent's version.") { $0["status"]?["agentVersion"] ?? "" },
                column("Hostname", "The agent's host.") { $0["status"]?["hostname"] ?? "" },
                column("Heartbeat", "Time since the agent's last heartbeat.") { object in
                    guard let time = object["status"]?["lastHeartbeatTime"]?.stringValue else { return "<never>" }
                    return .string(HumanDuration.age(of: time, now: now) + " ago")
                },
                column("Labels", "The runner's labels.") { labels($0) },
            ]
        case RemoteRunSpec.kind:
            return [
                column("Failed", "Runners that failed.") {
                    .string(String($0["status"]?["counts"]?["failed"]?.intValue ?? 0))
                },
                column("Target", "The runners targeted.") { target($0["spec"]?["target"]) },
            ]
        case AssignmentSpec.kind:
            return [
                column("Routes", "The routes it places.") { list($0["spec"]?["routes"], limit: 40) },
                column("Actions", "The actions it places.") { list($0["spec"]?["actions"], limit: 40) },
            ]
        case TemplateSpec.kind:
            return [
                column("Title", "The title template.") {
                    .string(Wording.truncate(Wording.singleLine($0["spec"]?["title"]?.stringValue ?? ""), to: 40))
                }
            ]
        case Secret.kind:
            return [column("Type", "The secret's type.") { $0["type"] ?? "Opaque" }]
        case Kinds.execution.kind:
            return [
                column("Event", "The event's id.") { $0["spec"]?["eventId"] ?? "" },
                column("Error", "Why the attempt failed.") { object in
                    guard let error = object["spec"]?["error"]?.stringValue else { return "<none>" }
                    return .string(Wording.truncate(Wording.singleLine(error), to: 60))
                },
            ]
        case GitRepositorySpec.kind:
            return [
                column("Ref", "The branch, tag or commit followed.") { object in
                    let ref = object["spec"]?["ref"]
                    if let branch = ref?["branch"]?.stringValue { return .string("branch:\(branch)") }
                    if let tag = ref?["tag"]?.stringValue { return .string("tag:\(tag)") }
                    if let commit = ref?["commit"]?.stringValue { return .string("commit:\(commit.prefix(12))") }
                    return "<default>"
                },
                column("Path", "The directory applied.") { $0["spec"]?["path"] ?? "" },
                column("Suspended", "Whether fetching is suspended.") {
                    .string($0["spec"]?["suspend"]?.boolValue == true ? "True" : "False")
                },
            ]
        default:
            return []
        }
    }

    // MARK: Cells

    private static func list(_ value: JSONValue?, limit: Int) -> JSONValue {
        let items = (value?.arrayValue ?? []).compactMap(\.stringValue)
        return .string(items.isEmpty ? "<none>" : Wording.truncate(items.joined(separator: ","), to: limit))
    }

    private static func labels(_ object: JSONValue) -> JSONValue {
        let labels = (object["metadata"]?["labels"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        if labels.isEmpty { return "<none>" }
        return .string(labels.keys.sorted().map { "\($0)=\(labels[$0] ?? "")" }.joined(separator: ","))
    }

    private static func target(_ target: JSONValue?) -> JSONValue {
        guard let target else { return "<none>" }
        if target["all"]?.boolValue == true { return "all" }
        if let runners = target["runners"]?.arrayValue, !runners.isEmpty {
            return .string(Wording.truncate(runners.compactMap(\.stringValue).joined(separator: ","), to: 40))
        }
        if target["runnerSelector"] != nil { return "selector" }
        return "<none>"
    }
}
