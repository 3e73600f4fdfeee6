import Foundation

/// Selects objects by their labels, as `metav1.LabelSelector` does.
public struct LabelSelector: Codable, Sendable, Equatable, Hashable {
    public struct Requirement: Codable, Sendable, Equatable, Hashable {
        public enum Operator: String, SchemaEnum {
            case `in` = "In"
            case notIn = "NotIn"
            case exists = "Exists"
            case doesNotExist = "DoesNotExist"
        }

        public var key: String
        public var `operator`: Operator
        public var values: [String]?

        public init(key: String, operator: Operator, values: [String]? = nil) {
            self.key = key
            self.operator = `operator`
            self.values = values
        }

        public func matches(_ labels: [String: String]) -> Bool {
            switch self.operator {
            case .in: labels[key].map { (values ?? []).contains($0) } ?? false
            case .notIn: labels[key].map { !(values ?? []).contains($0) } ?? true
            case .exists: labels[key] != nil
            case .doesNotExist: labels[key] == nil
            }
        }
    }

    public var matchLabels: [String: String]?
    public var matchExpressions: [Requirement]?

    public init(matchLabels: [String: String]? = nil, matchExpressions: [Requirement]? = nil) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// An empty selector matches everything, as in Kubernetes.
    public func matches(_ labels: [String: String]) -> Bool {
        for (key, value) in matchLabels ?? [:] where labels[key] != value { return false }
        return (matchExpressions ?? []).allSatisfy { $0.matches(labels) }
    }

    /// Checks operators against their values (In/NotIn need values, Exists/DoesNotExist take none).
    public func validate(at path: String) -> [FieldError] {
        var errors: [FieldError] = []
        for (key, value) in matchLabels ?? [:] {
            errors += Names.validateLabel(key: key, value: value, at: FieldPath.join(path, "matchLabels"))
        }
        for (index, requirement) in (matchExpressions ?? []).enumerated() {
            let here = FieldPath.join(path, "matchExpressions[\(index)]")
            errors += Names.validateLabelKey(requirement.key, at: FieldPath.join(here, "key"))
            let values = requirement.values ?? []
            switch requirement.operator {
            case .in, .notIn:
                if values.isEmpty {
                    errors.append(
                        FieldError(
                            path: FieldPath.join(here, "values"), reason: .required,
                            message: "must be non-empty when operator is \(requirement.operator.rawValue)"))
                }
            case .exists, .doesNotExist:
                if !values.isEmpty {
                    errors.append(
                        FieldError(
                            path: FieldPath.join(here, "values"), reason: .forbidden,
                            message: "must be empty when operator is \(requirement.operator.rawValue)"))
                }
            }
        }
        return errors
    }
}

/// A parsed `-l` / `labelSelector=` string: `role=web,site in (paris,lyon),!legacy`.
public struct LabelQuery: Sendable, Equatable {
    public enum Term: Sendable, Equatable {
        case equals(String, String)
        case notEquals(String, String)
        case `in`(String, [String])
        case notIn(String, [String])
        case exists(String)
        case doesNotExist(String)
    }

    public var terms: [Term]

    public init(terms: [Term] = []) { self.terms = terms }

    public func matches(_ labels: [String: String]) -> Bool {
        terms.allSatisfy { term in
            switch term {
            case .equals(let key, let value): labels[key] == value
            case .notEquals(let key, let value): labels[key] != value
            case .in(let key, let values): labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): labels[key].map { !values.contains($0) } ?? true
            case .exists(let key): labels[key] != nil
            case .doesNotExist(let key): labels[key] == nil
            }
        }
    }

    /// Parses the Kubernetes label selector syntax; the error names the offending term.
    public static func parse(_ text: String) throws(FieldError) -> LabelQuery {
        var terms: [Term] = []
        for raw in splitTopLevel(text) {
            let term = raw.trimmingCharacters(in: .whitespaces)
            if term.isEmpty { continue }
            terms.append(try parseTerm(term))
        }
        return LabelQuery(terms: terms)
    }

    private static func splitTopLevel(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            switch character {
            case "(": depth += 1
            case ")": depth -= 1
            case "," where depth == 0:
                parts.append(current)
                current = ""
                continue
            default: break
            }
            current.append(character)
        }
        parts.append(current)
        return parts
    }

    private static func parseTerm(_ term: String) throws(FieldError) -> Term {
        func invalid(_ why: String) -> FieldError {
            FieldError(path: "labelSelector", message: "invalid term \"\(term)\": \(why)")
        }
        func key(_ raw: Substring) throws(FieldError) -> String {
            let key = raw.trimmingCharacters(in: .whitespaces)
            if let error = Names.validateLabelKey(key, at: "labelSelector").first { throw invalid(error.message) }
            return key
        }
        if term.hasPrefix("!") {
            return .doesNotExist(try key(term.dropFirst()))
        }
        for (symbol, isEqual) in [("!=", false), ("==", true), ("=", true)] {
            if let range = term.range(of: symbol) {
                let name = try key(term[..<range.lowerBound])
                let value = term[range.upperBound...].trimmingCharacters(in: .whitespaces)
                if let error = Names.validateLabelValue(value, at: "labelSelector").first {
                    throw invalid(error.message)
                }
                return isEqual ? .equals(name, value) : .notEquals(name, value)
            }
        }
        let words = term.split(separator: " ", maxSplits: 1)
        if words.count == 2 {
            let rest = words[1].trimmingCharacters(in: .whitespaces)
            for (word, isIn) in [("in", true), ("notin", false)] where rest.lowercased().hasPrefix(word) {
                let list = rest.dropFirst(word.count).trimmingCharacters(in: .whitespaces)
                guard list.hasPrefix("("), list.hasSuffix(")") else { throw invalid("expected a list in parentheses") }
                let values = list.dropFirst().dropLast().split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                let name = try key(words[0])
                return isIn ? .in(name, values) : .notIn(name, values)
            }
            throw invalid("expected =, ==, !=, in or notin")
        }
        return .exists(try key(Substring(term)))
    }
}
