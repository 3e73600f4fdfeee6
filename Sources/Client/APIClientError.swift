import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Resources

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failure talking to the API server: a `kind: Status` error it returned, or a failure to reach it at all.
///
/// The description reads like kubectl's: `Error from server (NotFound): routes.steady.dev "x" not found` for
/// errors from the server, and `cannot reach https://127.0.0.1:7443: connection refused — is the controller
/// running?` when the server could not be reached. It never contains a token.
public struct APIClientError: Error, Sendable, CustomStringConvertible {
    /// A stable category. New categories are added as static members.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The category's name.
        public var rawValue: String

        /// Creates a category with the given name.
        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// The category's name.
        public var description: String { rawValue }

        /// The server answered with an error status (``APIClientError/status`` and ``APIClientError/reason`` say
        /// which).
        public static let server = Code(rawValue: "server")
        /// The server could not be reached: refused, unresolvable, timed out, TLS failure.
        public static let connection = Code(rawValue: "connection")
        /// The server answered with something that is not what the API returns.
        public static let invalidResponse = Code(rawValue: "invalidResponse")
        /// The client is misconfigured (bad server URL, unusable CA).
        public static let configuration = Code(rawValue: "configuration")
    }

    /// One field-level cause from `details.causes`.
    public struct Cause: Sendable, Equatable, CustomStringConvertible {
        /// The field path, such as `spec.input`; empty when the cause concerns the whole object.
        public var field: String
        /// A machine-readable reason, such as `FieldValueInvalid`.
        public var reason: String
        /// What is wrong.
        public var message: String

        /// Creates a cause.
        public init(field: String, reason: String, message: String) {
            self.field = field
            self.reason = reason
            self.message = message
        }

        /// `field: message`, or the message alone.
        public var description: String { field.isEmpty ? message : "\(field): \(message)" }
    }

    /// What kind of failure this is.
    public var code: Code
    /// The HTTP status code (`Status.code`), or 0 when the server was not reached.
    public var status: Int
    /// `Status.reason` (`NotFound`, `Conflict`, `Invalid`, ...), empty when unknown.
    public var reason: String
    /// What went wrong.
    public var message: String
    /// Field-level causes from `details.causes`.
    public var causes: [Cause]
    /// `details.kind` (the plural resource name), when the server gave it.
    public var kind: String?
    /// `details.name`, when the server gave it.
    public var name: String?
    /// The server URL the request went to.
    public var server: String
    /// The error that caused this one, for connection failures.
    public var underlying: (any Error)?

    /// Creates an error.
    public init(
        code: Code, status: Int = 0, reason: String = "", message: String, causes: [Cause] = [],
        kind: String? = nil, name: String? = nil, server: String = "", underlying: (any Error)? = nil
    ) {
        self.code = code
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes
        self.kind = kind
        self.name = name
        self.server = server
        self.underlying = underlying
    }

    /// Whether the server said the object does not exist.
    public var isNotFound: Bool { code == .server && (reason == "NotFound" || status == 404) }
    /// Whether the server refused a write because of a stale version or conflicting field managers.
    public var isConflict: Bool { code == .server && reason == "Conflict" }
    /// Whether the server said a watch's resourceVersion is too old (410 Gone).
    public var isGone: Bool { code == .server && (status == 410 || reason == "Expired" || reason == "Gone") }

    /// kubectl's wording: `Error from server (Reason): message` for server errors, the message otherwise.
    public var description: String {
        switch code {
        case .server:
            var text = "Error from server (\(reason.isEmpty ? "HTTP \(status)" : reason)): \(message)"
            // The message already lists the causes for Invalid; others may carry extra detail.
            let unlisted = causes.filter { !message.contains($0.message) }
            if !unlisted.isEmpty {
                text += unlisted.map { "\n  \($0.description)" }.joined()
            }
            return text
        default:
            return message
        }
    }
}

// MARK: - Decoding Status responses

extension APIClientError {
    /// Decodes an error response: a `kind: Status` body when there is one, else a message naming the HTTP status.
    public static func decoding(status: Int, body: Data, server: String) -> APIClientError {
        guard let value = try? JSONValue.parse(body), value["kind"]?.stringValue == "Status" else {
            let text = String(decoding: body.prefix(200), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let detail = text.isEmpty ? "" : ": \(text)"
            return APIClientError(
                code: .server, status: status, reason: defaultReason(forStatus: status),
                message: "the server responded with HTTP \(status)\(detail)", server: server)
        }
        let causes = (value["details"]?["causes"]?.arrayValue ?? []).map { cause in
            Cause(
                field: cause["field"]?.stringValue ?? "", reason: cause["reason"]?.stringValue ?? "",
                message: cause["message"]?.stringValue ?? "")
        }
        let code = value["code"]?.intValue.map(Int.init) ?? status
        return APIClientError(
            code: .server, status: code,
            reason: value["reason"]?.stringValue ?? defaultReason(forStatus: code),
            message: value["message"]?.stringValue ?? "the server responded with HTTP \(code)",
            causes: causes, kind: value["details"]?["kind"]?.stringValue,
            name: value["details"]?["name"]?.stringValue, server: server)
    }

    /// The `Status.reason` Kubernetes uses for an HTTP status, for responses without a Status body.
    static func defaultReason(forStatus status: Int) -> String {
        switch status {
        case 400: "BadRequest"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "NotFound"
        case 405: "MethodNotAllowed"
        case 409: "Conflict"
        case 410: "Expired"
        case 413: "RequestEntityTooLarge"
        case 415: "UnsupportedMediaType"
        case 422: "Invalid"
        case 429: "TooManyRequests"
        case 500: "InternalError"
        case 503: "ServiceUnavailable"
        case 504: "Timeout"
        default: ""
        }
    }
}

// MARK: - Connection failures

extension APIClientError {
    /// Explains a failure to reach `server`: what happened and what to do about it.
    public static func connection(_ error: any Error, server: String) -> APIClientError {
        if let error = error as? APIClientError { return error }
        if server.lowercased().hasPrefix("http://"), let client = error as? HTTPClientError,
            client == .remoteConnectionClosed
        {
            return APIClientError(
                code: .connection,
                message: "cannot reach \(server): the server closed the connection — it probably expects HTTPS: "
                    + "use https://", server: server, underlying: error)
        }
        return APIClientError(
            code: .connection, message: "cannot reach \(server): \(explain(error))", server: server,
            underlying: error)
    }

    /// A short reason for a connection failure, with a hint.
    static func explain(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError {
            if let first = connection.connectionErrors.first {
                return explain(first.error)
            }
            if connection.dnsAError != nil || connection.dnsAAAAError != nil {
                return "cannot resolve host \(connection.host) — check the server address"
            }
            return "cannot connect to \(connection.host):\(connection.port) — is the controller running?"
        }
        if let io = error as? IOError {
            return explain(errno: io.errnoCode, fallback: "\(io)")
        }
        if let posix = error as? POSIXError {
            return explain(errno: posix.code.rawValue, fallback: "\(posix)")
        }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return explainTLS(error)
        }
        if let client = error as? HTTPClientError {
            switch client {
            case .connectTimeout:
                return "connection timed out — is the controller running and reachable?"
            case .deadlineExceeded, .readTimeout:
                return "the request timed out — the controller did not answer in time"
            case .remoteConnectionClosed:
                return "the server closed the connection — is it serving HTTPS on this port?"
            case .tlsHandshakeTimeout:
                return "the TLS handshake timed out — is this the controller's HTTPS port?"
            case .invalidURL, .emptyHost, .emptyScheme:
                return "invalid server URL — use https://HOST:PORT"
            default:
                return "\(client)"
            }
        }
        if let channel = error as? ChannelError, case .connectTimeout = channel {
            return "connection timed out — is the controller running and reachable?"
        }
        if let resolver = error as? SocketAddressError {
            return "cannot resolve host (\(resolver)) — check the server address"
        }
        let text = "\(error)"
        if text.localizedCaseInsensitiveContains("certificate") || text.localizedCaseInsensitiveContains("ssl") {
            return "TLS failed (\(text)) — check that the kubeconfig's CA is the controller's CA"
        }
        return text
    }

    private static func explainTLS(_ error: any Error) -> String {
        let text = "\(error)"
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return "TLS handshake failed: the server's certificate is not valid for this host name — connect with a "
                + "name the certificate lists (the controller adds more with --server-name)"
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "TLS handshake failed: the server's certificate is not signed by the trusted CA — check that the "
                + "kubeconfig's certificate-authority-data is this controller's CA (see its ca.crt)"
        }
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG") {
            return "TLS handshake failed: the server does not speak TLS on this port — is the URL's port the "
                + "controller's HTTPS port?"
        }
        return "TLS handshake failed (\(text)) — check the kubeconfig's CA and the server address"
    }

    private static func explain(errno code: Int32, fallback: String) -> String {
        switch code {
        case ECONNREFUSED: "connection refused — is the controller running?"
        case ETIMEDOUT: "connection timed out — is the controller running and reachable?"
        case EHOSTUNREACH, ENETUNREACH: "no route to host — check the server address and the network"
        case ECONNRESET: "connection reset by the server — is it serving HTTPS on this port?"
        default: fallback
        }
    }
}
