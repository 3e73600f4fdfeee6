import Resources

/// The `metadata.managedFields` of one object: which manager owns which fields.
struct ManagedFields {
    struct Entry {
        var manager: String
        var operation: String
        var subresource: String?
        var time: String
        var fields: FieldSet
    }

    var entries: [Entry]

    init(of object: JSONValue?) {
        let raw = object?["metadata"]?["managedFields"]?.arrayValue ?? []
        entries = raw.compactMap { item in
            guard let manager = item["manager"]?.stringValue else { return nil }
            return Entry(
                manager: manager, operation: item["operation"]?.stringValue ?? "Update",
                subresource: item["subresource"]?.stringValue, time: item["time"]?.stringValue ?? Timestamp.now(),
                fields: FieldSet(fieldsV1: item["fieldsV1"] ?? .object([:])))
        }
    }

    func fields(of manager: String, operation: String, subresource: String?) -> FieldSet {
        entries.first { $0.manager == manager && $0.operation == operation && $0.subresource == subresource }?.fields
            ?? FieldSet()
    }

    /// Sets what one manager owns; the entry's time changes only when its fields do.
    mutating func assign(_ fields: FieldSet, to manager: String, operation: String, subresource: String?) {
        if let index = entries.firstIndex(where: {
            $0.manager == manager && $0.operation == operation && $0.subresource == subresource
        }) {
            if entries[index].fields != fields {
                entries[index].fields = fields
                entries[index].time = Timestamp.now()
            }
        } else {
            entries.append(
                Entry(manager: manager, operation: operation, subresource: subresource, time: Timestamp.now(), fields: fields))
        }
        entries.removeAll { $0.fields.isEmpty }
    }

    /// Gives an updater the fields its write changed, taking them from every other manager.
    mutating func recordUpdate(by manager: String, old: JSONValue?, new: JSONValue, subresource: String?) {
        let statusOnly = subresource == "status"
        let newLeaves = FieldSet(leavesOf: new, statusOnly: statusOnly)
        let oldLeaves = old.map { FieldSet(leavesOf: $0, statusOnly: statusOnly) } ?? FieldSet()
        let changed = newLeaves.paths.filter { old?.value(at: $0) != new.value(at: $0) }
        let removed = oldLeaves.subtracting(newLeaves)
        for index in entries.indices {
            for path in changed where !(entries[index].manager == manager && entries[index].operation == "Update") {
                entries[index].fields.remove(overlapping: path)
            }
            for path in removed.paths { entries[index].fields.remove(overlapping: path) }
        }
        let owned = fields(of: manager, operation: "Update", subresource: subresource)
        let kept = FieldSet(owned.paths.filter { new.value(at: $0) != nil })
        assign(kept.union(FieldSet(Set(changed))), to: manager, operation: "Update", subresource: subresource)
    }

    func write(into object: inout JSONValue) {
        let rendered = entries.map { entry -> JSONValue in
            var item: JSONValue = [
                "manager": .string(entry.manager), "operation": .string(entry.operation),
                "apiVersion": .string(API.apiVersion), "time": .string(entry.time), "fieldsType": "FieldsV1",
                "fieldsV1": entry.fields.fieldsV1,
            ]
            if let subresource = entry.subresource { item["subresource"] = .string(subresource) }
            return item
        }
        if rendered.isEmpty {
            object["metadata"]?["managedFields"] = nil
        } else {
            object["metadata"]?["managedFields"] = .array(rendered)
        }
    }
}

/// Server-side apply: merges a manager's applied configuration into the live object, with conflicts.
enum ServerSideApply {
    /// Returns the merged object with updated managed fields, or throws a 409 listing the conflicts.
    static func apply(
        _ applied: JSONValue, to live: JSONValue?, manager: String, force: Bool, subresource: String?, info: KindInfo
    ) throws(APIError) -> JSONValue {
        let statusOnly = subresource == "status"
        let appliedFields = FieldSet(leavesOf: applied, statusOnly: statusOnly)
        var managed = ManagedFields(of: live)
        var conflicts: [(manager: String, path: FieldSet.Path)] = []
        if let live {
            for entry in managed.entries
            where !(entry.manager == manager && entry.operation == "Apply") && entry.subresource == subresource {
                for path in entry.fields.overlaps(with: appliedFields) where live.value(at: path) != applied.value(at: path) {
                    conflicts.append((entry.manager, path))
                }
            }
        }
        if !conflicts.isEmpty && !force {
            let causes = conflicts.map {
                FieldError(path: FieldSet.render($0.path), reason: .init("FieldManagerConflict"), message: "conflict with \"\($0.manager)\"")
            }
            let listed = conflicts.map { "conflict with \"\($0.manager)\": \(FieldSet.render($0.path))" }
            throw APIError(
                .conflict, "Apply failed with \(Wording.count(conflicts.count, "conflict")): " + listed.joined(separator: "; "),
                causes: causes, kind: info.plural, name: applied["metadata"]?["name"]?.stringValue)
        }
        for conflict in conflicts {
            for index in managed.entries.indices where managed.entries[index].manager == conflict.manager {
                managed.entries[index].fields.remove(overlapping: conflict.path)
            }
        }
        var result = live ?? [
            "apiVersion": applied["apiVersion"] ?? .null, "kind": applied["kind"] ?? .null,
            "metadata": ["name": applied["metadata"]?["name"] ?? .null],
        ]
        let previouslyApplied = managed.fields(of: manager, operation: "Apply", subresource: subresource)
        let othersOwn = managed.entries.filter { !($0.manager == manager && $0.operation == "Apply") }
            .reduce(FieldSet()) { $0.union($1.fields) }
        for path in previouslyApplied.subtracting(appliedFields).paths where othersOwn.overlaps(with: FieldSet([path])).isEmpty {
            result.removeValue(at: path)
        }
        for path in appliedFields.paths {
            if let value = applied.value(at: path) { result.setValue(value, at: path) }
        }
        managed.assign(appliedFields, to: manager, operation: "Apply", subresource: subresource)
        managed.write(into: &result)
        return result
    }
}
