/// A certificate to trust or to pin is not usable: not PEM, holding no certificate, or not encodable.
///
/// The message says which; certificates are public, but the message never quotes the input.
public struct CertificateError: Error, Sendable, CustomStringConvertible {
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

        /// The text is not valid PEM, or holds no certificate.
        public static let invalidCertificate = Code(rawValue: "invalidCertificate")
    }

    /// What kind of failure this is.
    public var code: Code
    /// What was wrong.
    public var message: String
    /// The error that caused this one, when there is one.
    public var underlying: (any Error)?

    /// Creates an error.
    public init(code: Code, message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// The message, followed by the underlying error when there is one.
    public var description: String {
        guard let underlying else { return message }
        return "\(message): \(underlying)"
    }
}
