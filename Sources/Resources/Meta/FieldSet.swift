/// The set of leaf fields of an object, as server-side apply tracks ownership (`managedFields.fieldsV1`).
///
/// Lists are atomic, as for Kubernetes custom resources without list-type markers: a list is one leaf.
public struct FieldSet: Sendable, Equatable {
    public typealias Path = [String]
    public private(set) var paths: Set<Path>

    public init(_ paths: Set<Path> = []) { self.paths = paths }

    /// Fields the server owns or that identify the object, never tracked per manager.
    static let ignored: [Path] = [
        ["apiVersion"], ["kind"], ["metadata", "name"], ["metadata", "uid"], ["metadata", "resourceVersion"],
        ["metadata", "generation"], ["metadata", "creationTimestamp"], ["metadata", "managedFields"],
        ["metadata", "deletionTimestamp"], ["metadata", "namespace"], ["metadata", "generateName"],
    ]

    /// The leaves of `value`, leaving out server-owned fields and either `status` or everything but `status`.
    public init(leavesOf value: JSONValue, statusOnly: Bool = false) {
        var paths: Set<Path> = []
        if statusOnly {
            if let status = value["status"] { FieldSet.collect(status, prefix: ["status"], into: &paths) }
        } else if case .object(var members) = value {
            members["status"] = nil
            FieldSet.collect(.object(members), prefix: [], into: &paths)
        } else {
            FieldSet.collect(value, prefix: [], into: &paths)
        }
        self.paths = paths.filter { path in !FieldSet.ignored.contains(where: { path.starts(with: $0) }) }
    }

    private static func collect(_ value: JSONValue, prefix: Path, into paths: inout Set<Path>) {
        if case .object(let members) = value, !members.isEmpty {
            for (key, member) in members { collect(member, prefix: prefix + [key], into: &paths) }
        } else if !prefix.isEmpty {
            paths.insert(prefix)
        }
    }

    public var isEmpty: Bool { paths.isEmpty }

    public func contains(_ path: Path) -> Bool { paths.contains(path) }

    /// Paths of both sets that overlap: equal, or one inside the other.
    public func overlaps(with other: FieldSet) -> [Path] {
        paths.filter { mine in other.paths.contains { $0.starts(with: mine) || mine.starts(with: $0) } }.sorted {
            $0.joined(separator: ".") < $1.joined(separator: ".")
        }
    }

    public mutating func remove(overlapping path: Path) {
        paths = paths.filter { !($0.starts(with: path) || path.starts(with: $0)) }
    }

    public func subtracting(_ other: FieldSet) -> FieldSet { FieldSet(paths.subtracting(other.paths)) }
    public func union(_ other: FieldSet) -> FieldSet { FieldSet(paths.union(other.paths)) }

    /// The `fieldsV1` tree: `{"f:spec": {"f:actions": {}}}`.
    public var fieldsV1: JSONValue {
        var root = JSONValue.object([:])
        for path in paths {
            root = FieldSet.inserting(path[...], into: root)
        }
        return root
    }

    private static func inserting(_ path: ArraySlice<String>, into tree: JSONValue) -> JSONValue {
        guard let first = path.first else { return tree }
        var members = tree.objectValue ?? [:]
        members["f:" + first] = inserting(path.dropFirst(), into: members["f:" + first] ?? .object([:]))
        return .object(members)
    }

    public init(fieldsV1: JSONValue) {
        var paths: Set<Path> = []
        FieldSet.readTree(fieldsV1, prefix: [], into: &paths)
        self.paths = paths
    }

    private static func readTree(_ tree: JSONValue, prefix: Path, into paths: inout Set<Path>) {
        let members = (tree.objectValue ?? [:]).filter { $0.key.hasPrefix("f:") }
        if members.isEmpty {
            if !prefix.isEmpty { paths.insert(prefix) }
            return
        }
        for (key, child) in members { readTree(child, prefix: prefix + [String(key.dropFirst(2))], into: &paths) }
    }

    /// Renders a path as kubectl shows conflicts: `.spec.actions`.
    public static func render(_ path: Path) -> String { "." + path.joined(separator: ".") }
}

extension JSONValue {
    /// The value at a field path, if every step exists.
    public func value(at path: FieldSet.Path) -> JSONValue? {
        var current: JSONValue? = self
        for key in path { current = current?[key] }
        return current
    }

    /// Sets the value at a path, creating objects on the way.
    public mutating func setValue(_ value: JSONValue, at path: FieldSet.Path) {
        guard let first = path.first else {
            self = value
            return
        }
        var members = objectValue ?? [:]
        var child = members[first] ?? .object([:])
        if path.count > 1, child.objectValue == nil { child = .object([:]) }
        child.setValue(value, at: Array(path.dropFirst()))
        members[first] = child
        self = .object(members)
    }

    /// Removes the value at a path; objects left empty by the removal are removed too.
    public mutating func removeValue(at path: FieldSet.Path) {
        guard let first = path.first, var members = objectValue else { return }
        if path.count == 1 {
            members[first] = nil
        } else if var child = members[first] {
            child.removeValue(at: Array(path.dropFirst()))
            if child.objectValue?.isEmpty ?? false {
                members.removeValue(forKey: first)
            } else {
                members[first] = child
            }
        }
        self = .object(members)
    }
}

extension FieldSet {
    /// Whether server-side applying `applied` as `manager` would leave `live` exactly as it is: the manager's
    /// Apply entry owns exactly the applied fields, and each already has the applied value. Then nothing is
    /// removed, nothing set, no conflict is possible and the managed fields stay as they are.
    public static func applyChangesNothing(_ applied: JSONValue, live: JSONValue, manager: String) -> Bool {
        let entries = live["metadata"]?["managedFields"]?.arrayValue ?? []
        guard
            let owned = entries.first(where: {
                $0["manager"]?.stringValue == manager && $0["operation"]?.stringValue == "Apply"
                    && ($0["subresource"]?.stringValue ?? "").isEmpty
            })
        else { return false }
        let appliedFields = FieldSet(leavesOf: applied)
        guard FieldSet(fieldsV1: owned["fieldsV1"] ?? .object([:])) == appliedFields else { return false }
        return appliedFields.paths.allSatisfy { live.value(at: $0) == applied.value(at: $0) }
    }
}
