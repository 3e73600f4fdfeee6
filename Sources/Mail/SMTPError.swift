/// A failed SMTP delivery: the step it failed at, the server's reply code when there was one, and what happened.
///
/// Messages never hold the password: texts quoted from the server are scrubbed of it and of its base64 forms.
public struct SMTPError: Error, Sendable, CustomStringConvertible {
    /// The steps of one delivery, in order.
    public enum Step: Sendable, Equatable, CustomStringConvertible {
        case connect, greeting, ehlo, startTLS, tlsHandshake, authentication, mailFrom
        case rcptTo(String)
        case data, message, quit

        public var description: String {
            switch self {
            case .connect: "connect"
            case .greeting: "greeting"
            case .ehlo: "EHLO"
            case .startTLS: "STARTTLS"
            case .tlsHandshake: "TLS handshake"
            case .authentication: "AUTH"
            case .mailFrom: "MAIL FROM"
            case .rcptTo(let address): "RCPT TO <\(address)>"
            case .data: "DATA"
            case .message: "message content"
            case .quit: "QUIT"
            }
        }
    }

    public enum Kind: Sendable, Equatable {
        /// The server answered with an error code.
        case rejected
        /// The connection failed, closed early, or the server sent something that is not SMTP.
        case connection
        /// The whole delivery took longer than its timeout.
        case timeout
        /// The server cannot be used as configured, e.g. no STARTTLS when it is required.
        case unsupported
        /// Sending would break the configured security, e.g. credentials without TLS.
        case refused
    }

    public var step: Step
    public var kind: Kind
    /// The server's reply code, when it answered.
    public var code: Int?
    /// The server's host and port.
    public var server: String
    public var message: String

    public init(step: Step, kind: Kind, code: Int? = nil, server: String, message: String) {
        self.step = step
        self.kind = kind
        self.code = code
        self.server = server
        self.message = message
    }

    /// `SMTP RCPT TO <a@example.com> failed at 127.0.0.1:2525: 550 no such user`.
    public var description: String { "SMTP \(step) failed at \(server): \(message)" }
}
