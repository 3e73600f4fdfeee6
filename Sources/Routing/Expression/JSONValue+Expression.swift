import Resources

/// CEL semantics for JSON values: type names, equality, ordering, arithmetic, field selection and indexing.
extension JSONValue {
    /// The CEL name of this value's type, as `type()` returns it and error messages show it.
    var celTypeName: String {
        switch self {
        case .null: "null_type"
        case .bool: "bool"
        case .int: "int"
        case .double: "double"
        case .string: "string"
        case .array: "list"
        case .object: "map"
        }
    }

    /// CEL equality: numbers compare by value across int and double, containers element by element,
    /// and values of different types are simply unequal.
    static func celEqual(_ left: JSONValue, _ right: JSONValue) -> Bool {
        switch (left, right) {
        case (.string(let a), .string(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        case (.int(let a), .double(let b)), (.double(let b), .int(let a)): return compare(a, b) == .equal
        case (.bool(let a), .bool(let b)): return a == b
        case (.null, .null): return true
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            for (x, y) in zip(a, b) where !celEqual(x, y) { return false }
            return true
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for (key, x) in a {
                guard let y = b[key], celEqual(x, y) else { return false }
            }
            return true
        default:
            return false
        }
    }

    enum Order {
        case less, equal, greater
        /// NaN against anything: every relation is false, none is an error.
        case unordered
    }

    /// Exact comparison of an integer with a double, without rounding the integer through `Double`.
    static func compare(_ integer: Int64, _ double: Double) -> Order {
        if double.isNaN { return .unordered }
        if double >= 9_223_372_036_854_775_808.0 { return .less }
        if double < -9_223_372_036_854_775_808.0 { return .greater }
        let floor = double.rounded(.down)
        let whole = Int64(floor)
        if integer < whole { return .less }
        if integer > whole { return .greater }
        return double > floor ? .less : .equal
    }

    private static func order<T: Comparable>(_ a: T, _ b: T) -> Order {
        a < b ? .less : (a == b ? .equal : (a > b ? .greater : .unordered))
    }

    /// Ordering for `<`, `<=`, `>`, `>=`: numbers (mixed int/double too), strings by code point, booleans.
    static func celCompare(
        _ left: JSONValue, _ right: JSONValue, operator name: String, at offset: Int
    ) throws(ExpressionFailure) -> Order {
        switch (left, right) {
        case (.int(let a), .int(let b)): return order(a, b)
        case (.double(let a), .double(let b)): return order(a, b)
        case (.int(let a), .double(let b)): return compare(a, b)
        case (.double(let a), .int(let b)):
            switch compare(b, a) {
            case .less: return .greater
            case .greater: return .less
            case let other: return other
            }
        case (.string(let a), .string(let b)):
            // UTF-8 byte order is code point order, which is what CEL specifies.
            if a == b { return .equal }
            return a.utf8.lexicographicallyPrecedes(b.utf8) ? .less : .greater
        case (.bool(let a), .bool(let b)):
            return a == b ? .equal : (!a ? .less : .greater)
        default:
            throw .noOverload(name, [left.celTypeName, right.celTypeName], at: offset)
        }
    }

    /// `+ - * / % == != < <= > >= in`.
    static func celApply(
        _ op: ExpressionBinaryOperator, _ left: JSONValue, _ right: JSONValue, at offset: Int
    ) throws(ExpressionFailure) -> JSONValue {
        switch op {
        case .equal: return .bool(celEqual(left, right))
        case .notEqual: return .bool(!celEqual(left, right))
        case .less: return .bool(try celCompare(left, right, operator: op.rawValue, at: offset) == .less)
        case .greater: return .bool(try celCompare(left, right, operator: op.rawValue, at: offset) == .greater)
        case .lessOrEqual:
            let order = try celCompare(left, right, operator: op.rawValue, at: offset)
            return .bool(order == .less || order == .equal)
        case .greaterOrEqual:
            let order = try celCompare(left, right, operator: op.rawValue, at: offset)
            return .bool(order == .greater || order == .equal)
        case .in: return .bool(try celContains(right, left, operator: "in", at: offset))
        case .add, .subtract, .multiply, .divide, .remainder:
            return try celArithmetic(op, left, right, at: offset)
        }
    }

    private static func celArithmetic(
        _ op: ExpressionBinaryOperator, _ left: JSONValue, _ right: JSONValue, at offset: Int
    ) throws(ExpressionFailure) -> JSONValue {
        switch (left, right) {
        case (.int(let a), .int(let b)):
            let result: (partialValue: Int64, overflow: Bool)
            switch op {
            case .add: result = a.addingReportingOverflow(b)
            case .subtract: result = a.subtractingReportingOverflow(b)
            case .multiply: result = a.multipliedReportingOverflow(by: b)
            case .divide:
                guard b != 0 else { throw ExpressionFailure(.divisionByZero, "division by zero", at: offset) }
                result = a.dividedReportingOverflow(by: b)
            default:
                guard b != 0 else { throw ExpressionFailure(.divisionByZero, "modulus by zero", at: offset) }
                result = a.remainderReportingOverflow(dividingBy: b)
            }
            guard !result.overflow else {
                throw ExpressionFailure(.overflow, "integer overflow in '\(op.rawValue)'", at: offset)
            }
            return .int(result.partialValue)
        case (.string(let a), .string(let b)) where op == .add:
            return .string(a + b)
        case (.array(let a), .array(let b)) where op == .add:
            return .array(a + b)
        default:
            // JSON does not distinguish 2 from 2.0, so unlike CEL, mixed int/double arithmetic is promoted to double.
            guard op != .remainder, let a = left.numberAsDouble, let b = right.numberAsDouble else {
                throw .noOverload(op.rawValue, [left.celTypeName, right.celTypeName], at: offset)
            }
            switch op {
            case .add: return .double(a + b)
            case .subtract: return .double(a - b)
            case .multiply: return .double(a * b)
            default:
                guard b != 0 else { throw ExpressionFailure(.divisionByZero, "division by zero", at: offset) }
                return .double(a / b)
            }
        }
    }

    private var numberAsDouble: Double? {
        switch self {
        case .int(let number): Double(number)
        case .double(let number): number
        default: nil
        }
    }

    /// Membership: an element of a list, a key of a map, or (for `contains`) a substring of a string.
    static func celContains(
        _ container: JSONValue, _ element: JSONValue, operator name: String, at offset: Int,
        allowSubstring: Bool = false
    ) throws(ExpressionFailure) -> Bool {
        switch container {
        case .array(let items):
            for item in items where celEqual(item, element) { return true }
            return false
        case .object(let members):
            guard case .string(let key) = element else { return false }
            return members[key] != nil
        case .string(let text) where allowSubstring:
            guard case .string(let part) = element else {
                throw .noOverload(name, [container.celTypeName, element.celTypeName], at: offset)
            }
            return utf8Contains(text, part)
        default:
            let types =
                name == "in"
                ? [element.celTypeName, container.celTypeName]
                : [container.celTypeName, element.celTypeName]
            throw .noOverload(name, types, at: offset)
        }
    }

    /// Substring search over UTF-8 bytes: code-point exact, as CEL specifies, and faster than `Character` search.
    static func utf8Contains(_ haystack: String, _ needle: String) -> Bool {
        if needle.isEmpty { return true }
        var haystack = haystack
        var needle = needle
        return haystack.withUTF8 { text in
            needle.withUTF8 { part in
                guard part.count <= text.count, let first = part.first else { return part.isEmpty }
                var start = 0
                let last = text.count - part.count
                while start <= last {
                    if text[start] == first {
                        var matched = 1
                        while matched < part.count && text[start + matched] == part[matched] { matched += 1 }
                        if matched == part.count { return true }
                    }
                    start += 1
                }
                return false
            }
        }
    }

    /// `value.field`: the member of a map, or a `noSuchField` error.
    func celSelect(_ field: String, at offset: Int) throws(ExpressionFailure) -> JSONValue {
        guard case .object(let members) = self else {
            throw ExpressionFailure(
                .typeMismatch, "cannot select field '\(field)' from a value of type \(celTypeName)", at: offset)
        }
        guard let member = members[field] else { throw .noSuchKey(field, at: offset) }
        return member
    }

    /// `value[key]`: a list element by integer position or a map member by string key.
    func celIndex(_ key: JSONValue, at offset: Int) throws(ExpressionFailure) -> JSONValue {
        switch (self, key) {
        case (.array(let items), .int(let position)):
            guard position >= 0, position < items.count else {
                throw ExpressionFailure(
                    .indexOutOfRange, "index \(position) out of range for list of size \(items.count)", at: offset)
            }
            return items[Int(position)]
        case (.array(let items), .double(let position)) where position.rounded() == position:
            // JSON numbers such as 1.0 still name a list position.
            guard position >= 0, position < Double(items.count) else {
                throw ExpressionFailure(
                    .indexOutOfRange, "index \(position) out of range for list of size \(items.count)", at: offset)
            }
            return items[Int(position)]
        case (.object(let members), .string(let name)):
            guard let member = members[name] else { throw .noSuchKey(name, at: offset) }
            return member
        default:
            throw .noOverload("[]", [celTypeName, key.celTypeName], at: offset)
        }
    }
}
