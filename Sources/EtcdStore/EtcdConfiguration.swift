import Foundation

/// How to reach etcd: `--store etcd://HOST:PORT[,HOST:PORT...]`, `--store-prefix` and the `--etcd-*` TLS files.
public struct EtcdConfiguration: Sendable, Equatable {
    /// One `HOST:PORT` per etcd member; the client fails over between them.
    public var endpoints: [String]
    /// The key prefix every steady key lives under.
    public var prefix: String
    /// The CA that signed etcd's serving certificate (PEM file); nil for plaintext.
    public var caCertificate: String?
    /// A client certificate and key (PEM files), for etcd with `--client-cert-auth`.
    public var clientCertificate: String?
    public var clientKey: String?
    /// Live events a watcher may leave unconsumed before its stream ends with `unavailable`.
    public var watchBufferSize: Int

    public init(
        endpoints: [String], prefix: String = "/steady", caCertificate: String? = nil,
        clientCertificate: String? = nil, clientKey: String? = nil, watchBufferSize: Int = 16_384
    ) {
        self.endpoints = endpoints
        self.prefix = prefix
        self.caCertificate = caCertificate
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.watchBufferSize = max(watchBufferSize, 1)
    }

    /// Parses `etcd://HOST:PORT[,HOST:PORT...]`; TLS is used when `caCertificate` is set (`--etcd-cacert`).
    public init(url: String, prefix: String = "/steady") throws {
        let schemes = ["etcd://", "http://", "https://"]
        guard let scheme = schemes.first(where: { url.hasPrefix($0) }) else {
            throw EtcdConfigurationError(
                "--store \(url): expected sqlite or etcd://HOST:PORT[,HOST:PORT...], e.g. etcd://127.0.0.1:2379")
        }
        let endpoints = url.dropFirst(scheme.count).split(separator: ",").map {
            String($0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "/")))
        }
        guard !endpoints.isEmpty else { throw EtcdConfigurationError("--store \(url): names no etcd endpoint") }
        for endpoint in endpoints {
            guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]),
                (1...65535).contains(port), colon != endpoint.startIndex
            else {
                throw EtcdConfigurationError("--store \(url): endpoint \(endpoint) is not HOST:PORT, e.g. 127.0.0.1:2379")
            }
        }
        self.init(endpoints: endpoints, prefix: prefix)
    }

    /// Each endpoint as a host and a port.
    var hostsAndPorts: [(host: String, port: Int)] {
        endpoints.compactMap { endpoint in
            guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...])
            else { return nil }
            var host = String(endpoint[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return (host, port)
        }
    }
}

/// A `--store` or `--etcd-*` value that cannot be used, with what to write instead.
public struct EtcdConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
