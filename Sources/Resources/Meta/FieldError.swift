/// One problem with one field of an object, located by its path (`spec.actions[1]`).
public struct FieldError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why a field was rejected, in the words of Kubernetes' `StatusCause.reason`.
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let unknownField = Reason("FieldValueUnknown")
        public static let required = Reason("FieldValueRequired")
        public static let invalid = Reason("FieldValueInvalid")
        public static let typeMismatch = Reason("FieldValueTypeInvalid")
        public static let duplicate = Reason("FieldValueDuplicate")
        public static let notSupported = Reason("FieldValueNotSupported")
        public static let tooLong = Reason("FieldValueTooLong")
        public static let forbidden = Reason("FieldValueForbidden")
    }

    public var path: String
    public var reason: Reason
    public var message: String

    public init(path: String, reason: Reason = .invalid, message: String) {
        self.path = path
        self.reason = reason
        self.message = message
    }

    /// `spec.timeout: invalid duration "5x"`.
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }

    /// The same error located under a parent path.
    public func nested(under parent: String) -> FieldError {
        var copy = self
        copy.path = FieldPath.join(parent, path)
        return copy
    }
}

/// Several field errors that reject one object together.
public struct ValidationFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var errors: [FieldError]

    public init(_ errors: [FieldError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "; ") }
}

/// Building and rendering field paths in the dotted style of kubectl (`spec.headers[0].name`).
public enum FieldPath {
    public static func join(_ parent: String, _ child: String) -> String {
        if parent.isEmpty { return child }
        if child.isEmpty { return parent }
        if child.hasPrefix("[") { return parent + child }
        return parent + "." + child
    }

    public static func render(_ codingPath: [any CodingKey]) -> String {
        var path = ""
        for key in codingPath {
            if let index = key.intValue {
                path += "[\(index)]"
            } else {
                path = join(path, key.stringValue)
            }
        }
        return path
    }
}
