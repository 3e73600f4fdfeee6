import Resources

/// An API failure, rendered as a Kubernetes `Status` with the matching HTTP code and reason.
public struct APIError: Error, Sendable, CustomStringConvertible {
    /// The `Status.reason` values kubectl understands.
    public struct Reason: Hashable, Sendable {
        public let rawValue: String
        public let code: Int
        public init(_ rawValue: String, code: Int) {
            self.rawValue = rawValue
            self.code = code
        }

        public static let badRequest = Reason("BadRequest", code: 400)
        public static let unauthorized = Reason("Unauthorized", code: 401)
        public static let forbidden = Reason("Forbidden", code: 403)
        public static let notFound = Reason("NotFound", code: 404)
        public static let methodNotAllowed = Reason("MethodNotAllowed", code: 405)
        public static let notAcceptable = Reason("NotAcceptable", code: 406)
        public static let alreadyExists = Reason("AlreadyExists", code: 409)
        public static let conflict = Reason("Conflict", code: 409)
        public static let gone = Reason("Expired", code: 410)
        public static let requestEntityTooLarge = Reason("RequestEntityTooLarge", code: 413)
        public static let unsupportedMediaType = Reason("UnsupportedMediaType", code: 415)
        public static let invalid = Reason("Invalid", code: 422)
        public static let tooManyRequests = Reason("TooManyRequests", code: 429)
        public static let internalError = Reason("InternalError", code: 500)
        public static let serviceUnavailable = Reason("ServiceUnavailable", code: 503)
    }

    public var reason: Reason
    public var message: String
    public var causes: [FieldError]
    public var kind: String?
    public var name: String?

    public init(_ reason: Reason, _ message: String, causes: [FieldError] = [], kind: String? = nil, name: String? = nil) {
        self.reason = reason
        self.message = message
        self.causes = causes
        self.kind = kind
        self.name = name
    }

    public var description: String { message }

    public static func notFound(_ info: KindInfo, _ name: String) -> APIError {
        APIError(.notFound, "\(info.plural).\(API.group) \"\(name)\" not found", kind: info.plural, name: name)
    }

    public static func invalid(_ info: KindInfo, _ name: String, _ failure: ValidationFailure) -> APIError {
        let detail = failure.errors.map(\.description).joined(separator: ", ")
        return APIError(
            .invalid, "\(info.kind).\(API.group) \"\(name)\" is invalid: \(detail)", causes: failure.errors,
            kind: info.plural, name: name)
    }

    /// The `kind: Status` object.
    public var status: JSONValue {
        var details: [String: JSONValue] = [:]
        if let name { details["name"] = .string(name) }
        if let kind {
            details["group"] = .string(API.group)
            details["kind"] = .string(kind)
        }
        if !causes.isEmpty {
            details["causes"] = .array(
                causes.map { ["reason": .string($0.reason.rawValue), "message": .string($0.message), "field": .string($0.path)] })
        }
        var status: JSONValue = [
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": [:],
            "status": "Failure",
            "message": .string(message),
            "reason": .string(reason.rawValue),
            "code": .int(Int64(reason.code)),
        ]
        if !details.isEmpty { status["details"] = .object(details) }
        return status
    }
}
