import NIOSSL

/// Where and how an ``SMTPClient`` delivers.
public struct SMTPConfiguration: Sendable {
    /// When the connection is upgraded with STARTTLS.
    public enum StartTLS: String, Sendable, CaseIterable {
        /// Upgrade, and fail when the server does not offer STARTTLS.
        case required
        /// Upgrade when offered; credentials are still never sent in clear text.
        case opportunistic
        /// Never upgrade.
        case disabled
    }

    public enum AuthMechanism: String, Sendable, CaseIterable {
        case plain = "PLAIN"
        case login = "LOGIN"
    }

    public var host: String
    public var port: Int
    public var startTLS: StartTLS
    public var credentials: SMTPCredentials?
    /// The mechanism to use; nil picks PLAIN when the server offers it, else LOGIN.
    public var authMechanism: AuthMechanism?
    /// The TLS used after STARTTLS; the host name (or IP address) is verified against the certificate.
    public var tls: TLSConfiguration
    /// The most one delivery may take, from connecting to the reply to the message.
    public var timeout: Duration
    /// The name given in EHLO.
    public var clientName: String
    /// Lets credentials cross without TLS when the host is a loopback address; for tests only.
    public var allowsCredentialsWithoutTLSOnLoopback: Bool

    public init(
        host: String, port: Int = 587, startTLS: StartTLS = .required, credentials: SMTPCredentials? = nil,
        authMechanism: AuthMechanism? = nil, tls: TLSConfiguration = SMTPConfiguration.defaultTLS,
        timeout: Duration = .seconds(30), clientName: String = "localhost",
        allowsCredentialsWithoutTLSOnLoopback: Bool = false
    ) {
        self.host = host
        self.port = port
        self.startTLS = startTLS
        self.credentials = credentials
        self.authMechanism = authMechanism
        self.tls = tls
        self.timeout = timeout
        self.clientName = clientName
        self.allowsCredentialsWithoutTLSOnLoopback = allowsCredentialsWithoutTLSOnLoopback
    }

    /// TLS 1.2 or later, verified against the system's trust store.
    public static var defaultTLS: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// Whether `host` names this machine: `localhost`, 127.0.0.0/8 or ::1.
    var isLoopback: Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// `host:port`, as errors name the server.
    var server: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A user name and password; the password is never printed.
public struct SMTPCredentials: Sendable, CustomStringConvertible {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "SMTPCredentials(username: \(username), password: <redacted>)" }
}
