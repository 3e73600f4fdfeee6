import Foundation

/// The plain events port (`--events-listen`): `POST /` and `POST /events`, as Postee serves them, so Trivy's and
/// Tracee's webhook outputs post there unchanged. ``EventServer`` serves it.
public enum EventListener {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// The bearer token callers must send; required unless `host` is a loopback address.
        public var token: String?
        /// Serve HTTPS with this certificate and key (PEM files) when both are given.
        public var tlsCertificatePath: String?
        public var tlsKeyPath: String?

        public init(
            host: String, port: Int, token: String? = nil, tlsCertificatePath: String? = nil,
            tlsKeyPath: String? = nil
        ) {
            self.host = host
            self.port = port
            self.token = token
            self.tlsCertificatePath = tlsCertificatePath
            self.tlsKeyPath = tlsKeyPath
        }

        /// Whether `host` only accepts connections from this machine.
        public var isLoopback: Bool { ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.") }

        /// Parses `HOST:PORT` (`[::1]:8082` for IPv6) as `--events-listen` takes it.
        public static func parseAddress(_ text: String) -> (host: String, port: Int)? {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
                (0...65535).contains(port)
            else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return (host.isEmpty ? "0.0.0.0" : host, port)
        }

        /// The configuration the `--events-listen`, `--events-token-file`, `--events-tls-cert` and `--events-tls-key`
        /// flags give, checked; the controller and the agent share it.
        public static func fromFlags(
            listen: String, tokenFile: String?, tlsCertificate: String?, tlsKey: String?
        ) throws(IntakeError) -> Configuration {
            guard let (host, port) = parseAddress(listen) else {
                throw IntakeError(.invalid, "--events-listen \(listen): expected HOST:PORT, e.g. 127.0.0.1:8082")
            }
            var token: String?
            if let tokenFile {
                guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                    throw IntakeError(.invalid, "--events-token-file \(tokenFile): cannot read the file")
                }
                token = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if token?.isEmpty == true {
                    throw IntakeError(.invalid, "--events-token-file \(tokenFile): the file is empty")
                }
            }
            let configuration = Configuration(
                host: host, port: port, token: token, tlsCertificatePath: tlsCertificate, tlsKeyPath: tlsKey)
            try configuration.validate()
            return configuration
        }

        /// Checks that a non-loopback address has a token and that TLS has both files.
        public func validate() throws(IntakeError) {
            if !isLoopback && (token ?? "").isEmpty {
                throw IntakeError(
                    .invalid,
                    "--events-listen \(host):\(port) is not a loopback address; give --events-token-file so that only "
                        + "callers with the token can post events")
            }
            if (tlsCertificatePath == nil) != (tlsKeyPath == nil) {
                throw IntakeError(.invalid, "give both --events-tls-cert and --events-tls-key, or neither")
            }
        }
    }
}
