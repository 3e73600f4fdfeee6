import Resources

/// JSON patch (RFC 6902): a list of add, remove, replace, move, copy and test operations on JSON pointers.
/// kubectl sends one to migrate managed fields before its first server-side apply.
public enum JSONPatch {
    public static func apply(_ patch: JSONValue, to target: JSONValue) throws(APIError) -> JSONValue {
        guard let operations = patch.arrayValue else {
            throw APIError(.badRequest, "a JSON patch must be an array of operations")
        }
        var document = target
        for (index, operation) in operations.enumerated() {
            guard let op = operation["op"]?.stringValue, let path = operation["path"]?.stringValue else {
                throw APIError(.badRequest, "JSON patch operation \(index): needs op and path")
            }
            let pointer = try parse(path, index: index)
            switch op {
            case "add":
                document = try set(operation["value"] ?? .null, at: pointer[...], in: document, insert: true, index: index)
            case "replace":
                guard value(at: pointer[...], in: document) != nil else {
                    throw APIError(.invalid, "JSON patch operation \(index): \(path) does not exist")
                }
                document = try set(operation["value"] ?? .null, at: pointer[...], in: document, insert: false, index: index)
            case "remove":
                document = try remove(at: pointer[...], in: document, index: index)
            case "test":
                guard value(at: pointer[...], in: document) == operation["value"] else {
                    throw APIError(.invalid, "JSON patch operation \(index): test failed at \(path)")
                }
            case "move", "copy":
                guard let from = operation["from"]?.stringValue else {
                    throw APIError(.badRequest, "JSON patch operation \(index): \(op) needs from")
                }
                let source = try parse(from, index: index)
                guard let moved = value(at: source[...], in: document) else {
                    throw APIError(.invalid, "JSON patch operation \(index): \(from) does not exist")
                }
                if op == "move" { document = try remove(at: source[...], in: document, index: index) }
                document = try set(moved, at: pointer[...], in: document, insert: true, index: index)
            default:
                throw APIError(.badRequest, "JSON patch operation \(index): unknown op \"\(op)\"")
            }
        }
        return document
    }

    private static func parse(_ path: String, index: Int) throws(APIError) -> [String] {
        if path.isEmpty { return [] }
        guard path.hasPrefix("/") else {
            throw APIError(.badRequest, "JSON patch operation \(index): path \"\(path)\" must start with /")
        }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    private static func value(at pointer: ArraySlice<String>, in document: JSONValue) -> JSONValue? {
        guard let first = pointer.first else { return document }
        switch document {
        case .object(let members): return members[first].flatMap { value(at: pointer.dropFirst(), in: $0) }
        case .array(let items):
            guard let position = Int(first), items.indices.contains(position) else { return nil }
            return value(at: pointer.dropFirst(), in: items[position])
        default: return nil
        }
    }

    private static func set(
        _ newValue: JSONValue, at pointer: ArraySlice<String>, in document: JSONValue, insert: Bool, index: Int
    ) throws(APIError) -> JSONValue {
        guard let first = pointer.first else { return newValue }
        let rest = pointer.dropFirst()
        switch document {
        case .object(var members):
            if rest.isEmpty {
                members[first] = newValue
            } else {
                guard let child = members[first] else {
                    throw APIError(.invalid, "JSON patch operation \(index): /\(pointer.joined(separator: "/")) has no parent")
                }
                members[first] = try set(newValue, at: rest, in: child, insert: insert, index: index)
            }
            return .object(members)
        case .array(var items):
            if rest.isEmpty && first == "-" && insert {
                items.append(newValue)
                return .array(items)
            }
            guard let position = Int(first), position >= 0,
                position < items.count || (insert && rest.isEmpty && position == items.count)
            else {
                throw APIError(.invalid, "JSON patch operation \(index): index \(first) is out of range")
            }
            if rest.isEmpty {
                if insert { items.insert(newValue, at: position) } else { items[position] = newValue }
            } else {
                items[position] = try set(newValue, at: rest, in: items[position], insert: insert, index: index)
            }
            return .array(items)
        default:
            throw APIError(.invalid, "JSON patch operation \(index): cannot descend into a \(document.typeName)")
        }
    }

    private static func remove(at pointer: ArraySlice<String>, in document: JSONValue, index: Int) throws(APIError) -> JSONValue {
        guard let first = pointer.first else { return .null }
        let rest = pointer.dropFirst()
        switch document {
        case .object(var members):
            guard let child = members[first] else {
                throw APIError(.invalid, "JSON patch operation \(index): nothing to remove at \(first)")
            }
            if rest.isEmpty {
                members.removeValue(forKey: first)
            } else {
                members[first] = try remove(at: rest, in: child, index: index)
            }
            return .object(members)
        case .array(var items):
            guard let position = Int(first), items.indices.contains(position) else {
                throw APIError(.invalid, "JSON patch operation \(index): index \(first) is out of range")
            }
            if rest.isEmpty { items.remove(at: position) } else { items[position] = try remove(at: rest, in: items[position], index: index) }
            return .array(items)
        default:
            throw APIError(.invalid, "JSON patch operation \(index): cannot descend into a \(document.typeName)")
        }
    }
}
