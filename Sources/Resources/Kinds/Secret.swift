import Foundation

/// Sensitive values (tokens, URLs with credentials) that actions reference by key.
///
/// As in Kubernetes, `stringData` is a write-only convenience: the server folds it into `data` (base64).
public struct Secret: Codable, Sendable, Equatable, FieldDocumented {
    public static let kind = "Secret"
    public static let plural = "secrets"
    public static let shortNames: [String] = []
    /// What list and get show instead of a value, unless an admin asks to reveal secrets.
    public static let redactedValue = "**redacted**"
    /// The most a Secret may hold, as in Kubernetes.
    public static let maximumSize = 1024 * 1024

    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var type: String?
    public var data: [String: String]?
    public var stringData: [String: String]?
    public var immutable: Bool?

    public init(name: String, stringData: [String: String]) {
        apiVersion = API.apiVersion
        kind = Secret.kind
        metadata = ObjectMeta(name: name)
        self.stringData = stringData
    }

    /// The decoded value of one key, from `data` or `stringData`.
    public func value(forKey key: String) -> String? {
        if let text = stringData?[key] { return text }
        guard let encoded = data?[key], let bytes = Data(base64Encoded: encoded) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Moves `stringData` into base64 `data`, as the API server stores it.
    public func foldingStringData() -> Secret {
        var copy = self
        var merged = data ?? [:]
        for (key, text) in stringData ?? [:] {
            merged[key] = Data(text.utf8).base64EncodedString()
        }
        copy.data = merged.isEmpty ? nil : merged
        copy.stringData = nil
        return copy
    }

    public func validate() -> [FieldError] {
        var errors: [FieldError] = []
        var total = 0
        for (field, values) in [("data", data), ("stringData", stringData)] {
            for (key, value) in values ?? [:] {
                let path = "\(field).\(key)"
                let isValidKey = !key.isEmpty && key.utf8.count <= 253
                    && key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }
                if !isValidKey {
                    errors.append(
                        FieldError(path: path, message: "invalid key: use letters, digits, '-', '_' or '.'"))
                }
                if field == "data" && value != Secret.redactedValue && Data(base64Encoded: value) == nil {
                    errors.append(FieldError(path: path, message: "must be base64-encoded (or use stringData)"))
                }
                total += value.utf8.count
            }
        }
        if total > Secret.maximumSize {
            errors.append(FieldError(path: "data", reason: .tooLong, message: "a Secret holds at most 1 MiB"))
        }
        return errors
    }

    public static let fieldDescriptions = [
        "data": "Values as base64; never shown by get or list unless an admin asks to reveal them.",
        "stringData": "Values as plain text, folded into data by the server.",
    ]
}
