/// Validation of names and labels by the rules Kubernetes applies.
public enum Names {
    /// DNS-1123 subdomain: at most 253 characters, lowercase alphanumerics, '-' and '.', starting and ending
    /// with an alphanumeric.
    public static func validateObjectName(_ name: String, at path: String = "metadata.name") -> [FieldError] {
        if name.isEmpty { return [FieldError(path: path, reason: .required, message: "name is required")] }
        if name.utf8.count > 253 {
            return [FieldError(path: path, reason: .tooLong, message: "must be no more than 253 characters")]
        }
        let isValid = name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            isDNSLabel(label, allowUppercase: false)
        }
        if isValid { return [] }
        return [
            FieldError(
                path: path,
                message:
                    "invalid name \"\(name)\": must consist of lowercase letters, digits, '-' or '.', and start and end with a letter or digit (e.g. \"web-1\")"
            )
        ]
    }

    /// DNS-1123 label (63 characters, no dots), used for label name parts and runner names in flags.
    public static func isDNSLabel(_ text: Substring, allowUppercase: Bool) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 63 else { return false }
        let bytes = Array(text.utf8)
        func isAlphanumeric(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || (allowUppercase && byte >= 0x41 && byte <= 0x5A)
        }
        guard let first = bytes.first, let last = bytes.last, isAlphanumeric(first), isAlphanumeric(last) else {
            return false
        }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == 0x2D }
    }

    /// A label key: optional DNS subdomain prefix and '/', then a name of at most 63 characters of
    /// alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric.
    public static func validateLabelKey(_ key: String, at path: String) -> [FieldError] {
        let parts = key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let name = parts.count == 2 ? parts[1] : parts[0]
        if parts.count == 2 {
            if !validateObjectName(String(parts[0]), at: path).isEmpty {
                return [FieldError(path: path, message: "invalid label key \"\(key)\": prefix must be a DNS subdomain")]
            }
        }
        if !isQualifiedNamePart(name) {
            return [
                FieldError(
                    path: path,
                    message:
                        "invalid label key \"\(key)\": name part must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
                )
            ]
        }
        return []
    }

    /// A label value: empty, or at most 63 characters like a key's name part.
    public static func validateLabelValue(_ value: String, at path: String) -> [FieldError] {
        if value.isEmpty || isQualifiedNamePart(Substring(value)) { return [] }
        return [
            FieldError(
                path: path,
                message:
                    "invalid label value \"\(value)\": must be empty or 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            )
        ]
    }

    public static func validateLabel(key: String, value: String, at path: String) -> [FieldError] {
        let here = FieldPath.join(path, key)
        return validateLabelKey(key, at: here) + validateLabelValue(value, at: here)
    }

    private static func isQualifiedNamePart(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 63 else { return false }
        func isAlphanumeric(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber) }
        guard let first = text.first, let last = text.last, isAlphanumeric(first), isAlphanumeric(last) else {
            return false
        }
        return text.allSatisfy { isAlphanumeric($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }
}
