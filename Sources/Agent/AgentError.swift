/// An error that stops an agent or one of its requests: what went wrong, where, and what to do.
///
/// Messages never contain the join token, the credential or secret values.
public struct AgentError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable category. New categories are added as static members.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The category's name.
        public var rawValue: String

        /// Creates a category with the given name.
        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// The category's name.
        public var description: String { rawValue }

        /// A flag or configuration value is invalid.
        public static let invalidConfiguration = Code(rawValue: "invalidConfiguration")
        /// The join token is not of the form `sha256:<hex>::<id>.<secret>`.
        public static let malformedJoinToken = Code(rawValue: "malformedJoinToken")
        /// The controller's CA does not have the hash the join token pins.
        public static let caMismatch = Code(rawValue: "caMismatch")
        /// The controller refused the join token (expired, revoked, unknown, malformed).
        public static let enrolmentRefused = Code(rawValue: "enrolmentRefused")
        /// Another live agent holds the runner name.
        public static let nameConflict = Code(rawValue: "nameConflict")
        /// The controller no longer accepts this agent's credential: it was revoked or its Runner deleted.
        public static let credentialRevoked = Code(rawValue: "credentialRevoked")
        /// The agent's credential expired before it could be rotated.
        public static let credentialExpired = Code(rawValue: "credentialExpired")
        /// The credential is not allowed to act as this runner.
        public static let forbidden = Code(rawValue: "forbidden")
        /// The controller answered with an unexpected status or body.
        public static let unexpectedResponse = Code(rawValue: "unexpectedResponse")
        /// The controller could not be reached.
        public static let unreachable = Code(rawValue: "unreachable")
        /// The state directory could not be read or written.
        public static let storage = Code(rawValue: "storage")
    }

    /// What kind of failure this is.
    public var code: Code
    /// What was wrong and what to do; never contains a token, credential or secret value.
    public var message: String
    /// The HTTP status the controller answered with, when the failure is an answer.
    public var httpStatus: Int?
    /// The error that caused this one, when there is one.
    public var underlying: (any Error)?

    /// Creates an error.
    public init(code: Code, message: String, httpStatus: Int? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.underlying = underlying
    }

    /// The message, followed by the underlying error when there is one.
    public var description: String {
        guard let underlying else { return message }
        return "\(message): \(underlying)"
    }

    /// Whether the controller refuses this agent's credential: retrying with it is pointless.
    public var isCredentialRefused: Bool {
        code == .credentialRevoked || code == .credentialExpired || code == .forbidden
    }

    /// Whether retrying later may succeed: the controller was unreachable or failed on its side.
    public var isTransient: Bool {
        if code == .unreachable { return true }
        if code == .unexpectedResponse, let httpStatus { return httpStatus >= 500 || httpStatus == 429 }
        return false
    }
}
