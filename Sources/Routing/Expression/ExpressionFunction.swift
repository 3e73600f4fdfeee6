import Resources

/// The built-in functions (not macros), with CEL and Postee/Rego spellings mapped onto one implementation.
///
/// Every function may be called globally, `f(x, y)`, or on a receiver, `x.f(y)`; the receiver is then the first
/// argument. That keeps CEL's `s.contains(t)` and Rego's `contains(s, t)` the same function.
enum ExpressionFunction: Sendable {
    case size, lowerASCII, upperASCII, lower, upper
    case toInt, toDouble, toString, type, dyn
    case contains, startsWith, endsWith
    /// `s.matches(pattern)`: subject first.
    case matches
    /// Rego's `regex.match(pattern, s)`: pattern first.
    case regexMatch

    /// Functions by the name written in source; `regex.match` is looked up with its namespace.
    static let byName: [String: ExpressionFunction] = [
        "size": .size, "count": .size,
        "lowerAscii": .lowerASCII, "upperAscii": .upperASCII, "lower": .lower, "upper": .upper,
        "int": .toInt, "double": .toDouble, "string": .toString, "type": .type, "dyn": .dyn,
        "contains": .contains,
        "startsWith": .startsWith, "startswith": .startsWith,
        "endsWith": .endsWith, "endswith": .endsWith,
        "matches": .matches, "regex.match": .regexMatch, "re_match": .regexMatch,
    ]

    /// Number of arguments, counting a receiver.
    var arity: Int {
        switch self {
        case .size, .lowerASCII, .upperASCII, .lower, .upper, .toInt, .toDouble, .toString, .type, .dyn: 1
        case .contains, .startsWith, .endsWith, .matches, .regexMatch: 2
        }
    }

    /// Whether the result is a new string, whose bytes count against the evaluation's memory budget.
    var buildsItsResult: Bool {
        switch self {
        case .lowerASCII, .upperASCII, .lower, .upper, .toString: true
        default: false
        }
    }

    /// Index of the argument that is a regular expression pattern, if any.
    var patternArgument: Int? {
        switch self {
        case .matches: 1
        case .regexMatch: 0
        default: nil
        }
    }

    func apply(_ value: JSONValue, name: String, at offset: Int) throws(ExpressionFailure) -> JSONValue {
        switch (self, value) {
        case (.size, .string(let text)): return .int(Int64(text.unicodeScalars.count))
        case (.size, .array(let items)): return .int(Int64(items.count))
        case (.size, .object(let members)): return .int(Int64(members.count))
        case (.lowerASCII, .string(let text)): return .string(Self.mapASCII(text, from: 0x41, to: 0x5A, by: 0x20))
        case (.upperASCII, .string(let text)): return .string(Self.mapASCII(text, from: 0x61, to: 0x7A, by: -0x20))
        case (.lower, .string(let text)): return .string(text.lowercased())
        case (.upper, .string(let text)): return .string(text.uppercased())
        case (.toInt, _): return try Self.convertToInt(value, at: offset)
        case (.toDouble, .int(let number)): return .double(Double(number))
        case (.toDouble, .double): return value
        case (.toDouble, .string(let text)):
            guard let number = Double(text) else {
                throw ExpressionFailure(.invalidConversion, "cannot convert '\(text)' to double", at: offset)
            }
            return .double(number)
        case (.toString, .string): return value
        case (.toString, .int(let number)): return .string(String(number))
        case (.toString, .double(let number)): return .string(String(number))
        case (.toString, .bool(let flag)): return .string(flag ? "true" : "false")
        case (.type, _): return .string(value.celTypeName)
        case (.dyn, _): return value
        default: throw .noOverload(name, [value.celTypeName], at: offset)
        }
    }

    func apply(
        _ first: JSONValue, _ second: JSONValue, name: String, at offset: Int
    ) throws(ExpressionFailure) -> JSONValue {
        switch (self, first, second) {
        case (.contains, _, _):
            return .bool(try JSONValue.celContains(first, second, operator: name, at: offset, allowSubstring: true))
        case (.startsWith, .string(let text), .string(let prefix)):
            return .bool(text.utf8.starts(with: prefix.utf8))
        case (.endsWith, .string(let text), .string(let suffix)):
            let tail = text.utf8.suffix(suffix.utf8.count)
            return .bool(tail.count == suffix.utf8.count && tail.elementsEqual(suffix.utf8))
        // Only the compiler's type check gets here: a call with its literal pattern compiles to `matchRegex`.
        case (.matches, .string(let text), .string(let pattern)):
            return .bool(try ExpressionRegex(pattern: pattern, at: offset).matches(text))
        case (.regexMatch, .string(let pattern), .string(let text)):
            return .bool(try ExpressionRegex(pattern: pattern, at: offset).matches(text))
        default:
            throw .noOverload(name, [first.celTypeName, second.celTypeName], at: offset)
        }
    }

    private static func mapASCII(_ text: String, from low: UInt8, to high: UInt8, by delta: Int) -> String {
        guard text.utf8.contains(where: { $0 >= low && $0 <= high }) else { return text }
        let bytes = text.utf8.map { $0 >= low && $0 <= high ? UInt8(Int($0) + delta) : $0 }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func convertToInt(_ value: JSONValue, at offset: Int) throws(ExpressionFailure) -> JSONValue {
        switch value {
        case .int: return value
        case .double(let number):
            // CEL truncates toward zero and rejects values outside the 64-bit range.
            guard number.isFinite, number >= -9_223_372_036_854_775_808.0, number < 9_223_372_036_854_775_808.0 else {
                throw ExpressionFailure(.overflow, "double \(number) is out of the int range", at: offset)
            }
            return .int(Int64(number.rounded(.towardZero)))
        case .string(let text):
            guard let number = Int64(text) else {
                throw ExpressionFailure(.invalidConversion, "cannot convert '\(text)' to int", at: offset)
            }
            return .int(number)
        default:
            throw .noOverload("int", [value.celTypeName], at: offset)
        }
    }
}
