import Hummingbird
import HummingbirdCore

/// A request's query parameters, read strictly: a value that is not of the parameter's type is a 400 `Status`
/// naming the parameter, never silently taken as a default.
struct QueryParameters {
    let values: FlatDictionary<Substring, Substring>

    init(_ request: Request) {
        values = request.uri.queryParameters
    }

    /// The raw value, nil when the parameter is absent.
    func string(_ name: String) -> String? {
        values[Substring(name)].map(String.init)
    }

    /// `true`, `1` or an empty value (`?watch`) are true; `false` and `0` are false (case-insensitive); nil when
    /// absent. kube-apiserver takes every other value as true; steady refuses it, so that a typo such as
    /// `watch=null` cannot flip the meaning of a request.
    func bool(_ name: String) throws(APIError) -> Bool? {
        guard let text = string(name) else { return nil }
        switch text.lowercased() {
        case "", "true", "1": return true
        case "false", "0": return false
        default:
            throw APIError(
                .badRequest, "invalid value \"\(text)\" for query parameter \(name): use true or false")
        }
    }

    /// A whole number within `range`; nil when absent.
    func integer(_ name: String, in range: ClosedRange<Int> = 0...Int.max) throws(APIError) -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            let bounds =
                range.upperBound == Int.max
                ? "\(range.lowerBound) or more" : "\(range.lowerBound) to \(range.upperBound)"
            throw APIError(
                .badRequest, "invalid value \"\(text)\" for query parameter \(name): use a whole number, \(bounds)")
        }
        return value
    }

    /// One of `allowed`; nil when absent or empty.
    func choice(_ name: String, of allowed: [String]) throws(APIError) -> String? {
        guard let text = string(name), !text.isEmpty else { return nil }
        guard allowed.contains(text) else {
            throw APIError(
                .badRequest,
                "invalid value \"\(text)\" for query parameter \(name): use \(allowed.joined(separator: " or "))")
        }
        return text
    }
}
