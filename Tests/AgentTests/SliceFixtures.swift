import Agent
import Resources

/// Slice objects as the controller sends them (apiVersion, kind, metadata.name and generation, spec or data).
enum SliceFixtures {
    static func route(_ name: String, input: String = "input.x == 1", actions: [String] = [], template: String? = nil)
        -> SliceObject
    {
        var spec: JSONValue = ["input": .string(input), "actions": .array(actions.map(JSONValue.string))]
        if let template { spec["template"] = .string(template) }
        return object("Route", name, field: "spec", spec)
    }

    static func httpAction(_ name: String, url: String = "https://hooks.example/notify") -> SliceObject {
        object("Action", name, field: "spec", ["type": "http", "http": ["url": .string(url)]])
    }

    static func execAction(_ name: String) -> SliceObject {
        object("Action", name, field: "spec", ["type": "exec", "exec": ["command": ["/usr/local/bin/kill-proc"]]])
    }

    static func template(_ name: String, body: String = "hello {{input.x}}") -> SliceObject {
        object("Template", name, field: "spec", ["type": "mustache", "body": .string(body)])
    }

    static func secret(_ name: String, value: String = "s3cret") -> SliceObject {
        object("Secret", name, field: "data", ["token": .string(Data(value.utf8).base64EncodedString())])
    }

    static func object(_ kind: String, _ name: String, field: String, _ content: JSONValue) -> SliceObject {
        let value: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": .string(kind),
            "metadata": ["name": .string(name), "generation": 1], field: content,
        ]
        return SliceObject(kind: kind, name: name, object: value)
    }

    static func snapshot(_ revision: Int64, _ objects: [SliceObject], digest: String? = nil) -> SliceMessage {
        SliceMessage(
            type: .snapshot, revision: revision, objects: objects,
            digest: digest ?? SliceDigest.digest(of: objects))
    }

    /// A diff from `base` whose digest is that of the slice it leads to (`after`).
    static func diff(
        _ revision: Int64, base: Int64, upserts: [SliceObject] = [], removed: [SliceKey] = [], after: [SliceObject],
        digest: String? = nil
    ) -> SliceMessage {
        SliceMessage(
            type: .diff, revision: revision, baseRevision: base, objects: upserts, removed: removed,
            digest: digest ?? SliceDigest.digest(of: after))
    }
}

import Foundation
