import Foundation
import Resources

/// Server-side tables (`meta.k8s.io/v1 Table`), which kubectl asks for so that `kubectl get` shows
/// READY and the kind's own columns instead of only NAME and AGE.
enum TableRendering {
    struct Column {
        var name: String
        var type = "string"
        var description: String
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

    private static func columns(for info: KindInfo, now: Date) -> [Column] {
        let name = Column(name: "Name", description: "Name of the object.") { $0["metadata"]?["name"] ?? "" }
        let ready = Column(name: "Ready", description: "The Ready condition.") { object in
            condition("Ready", of: object)
        }
        let age = Column(name: "Age", description: "Time since creation.") { object in
            .string(TableRendering.age(object["metadata"]?["creationTimestamp"]?.stringValue, now: now))
        }
        var specific: [Column] = []
        switch info.kind {
        case RouteSpec.kind:
            specific = [
                Column(name: "Actions", description: "Actions run for matching events.") { object in
                    .string((object["spec"]?["actions"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ","))
                },
                Column(name: "Input", description: "The match expression.", priority: 1) { object in
                    .string(object["spec"]?["input"]?.stringValue ?? "")
                },
            ]
        case ActionSpec.kind, TemplateSpec.kind:
            specific = [Column(name: "Type", description: "The kind of action or template.") { $0["spec"]?["type"] ?? "" }]
        case RunnerSpec.kind:
            specific = [
                Column(name: "Connected", description: "Whether the agent is connected.") { condition("Connected", of: $0) },
                Column(name: "Synced", description: "Whether the agent applied its slice.") { condition("Synced", of: $0) },
            ]
        case RemoteRunSpec.kind:
            specific = [
                Column(name: "Phase", description: "Where the run is.") { $0["status"]?["phase"] ?? "" },
                Column(name: "Succeeded", description: "Runners that succeeded out of all targeted.") { object in
                    let counts = object["status"]?["counts"]
                    return .string("\(counts?["succeeded"]?.intValue ?? 0)/\(counts?["total"]?.intValue ?? 0)")
                },
            ]
        case AssignmentSpec.kind:
            specific = [
                Column(name: "Runners", description: "Runners it matches.") { object in
                    .int(Int64(object["status"]?["matchedRunners"]?.arrayValue?.count ?? 0))
                }
            ]
        case Secret.kind:
            specific = [
                Column(name: "Keys", description: "Number of keys.") { object in
                    .int(Int64(object["data"]?.objectValue?.count ?? 0))
                }
            ]
        case GitRepositorySpec.kind:
            specific = [
                Column(name: "Revision", description: "The last applied revision.") { $0["status"]?["lastAppliedRevision"] ?? "" },
                Column(name: "URL", description: "Where the manifests come from.", priority: 1) { $0["spec"]?["url"] ?? "" },
            ]
        default:
            break
        }
        let hasReady = info.kind != Secret.kind
        return [name] + (hasReady ? [ready] : []) + specific + [age]
    }

    private static func condition(_ type: String, of object: JSONValue) -> JSONValue {
        let conditions = object["status"]?["conditions"]?.arrayValue ?? []
        return conditions.first { $0["type"]?.stringValue == type }?["status"] ?? ""
    }

    /// kubectl's short ages: 42s, 5m, 3h, 12d, 2y.
    static func age(_ timestamp: String?, now: Date) -> String {
        guard let timestamp, let created = Timestamp.parse(timestamp) else { return "<unknown>" }
        let seconds = max(0, Int(now.timeIntervalSince(created)))
        switch seconds {
        case ..<120: return "\(seconds)s"
        case ..<(120 * 60): return "\(seconds / 60)m"
        case ..<(48 * 3600): return "\(seconds / 3600)h"
        case ..<(365 * 86400): return "\(seconds / 86400)d"
        default: return "\(seconds / (365 * 86400))y"
        }
    }
}
