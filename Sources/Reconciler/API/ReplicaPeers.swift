import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOSSL
import Synchronization
import TLSSupport

/// What a replica answered: its status, content type and body, which streams as it arrives.
public struct ReplicaResponse: Sendable {
    public var status: HTTPResponse.Status
    public var contentType: String?
    public var body: any AsyncSequence<ByteBuffer, any Error> & Sendable

    public init(
        status: HTTPResponse.Status, contentType: String?, body: any AsyncSequence<ByteBuffer, any Error> & Sendable
    ) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// Sends a `GET` to another controller replica's API on behalf of a caller.
public protocol ReplicaFetching: Sendable {
    /// `GET <replica><pathAndQuery>` with the caller's `Authorization` header and ``ReplicaPeers/proxiedHeader`` set
    /// to `proxiedBy`; returns once the head has arrived. A replica that cannot be reached, or does not answer in
    /// time, throws.
    func get(replica: String, pathAndQuery: String, authorization: String?, proxiedBy: String) async throws
        -> ReplicaResponse
}

/// How one controller replica reaches the others, when several share a store: its own advertised API URL (recorded
/// where it holds something only it has, such as a runner's run output), and a client to the others' APIs.
///
/// A request passed to another replica carries ``proxiedHeader``; a replica never passes such a request on again,
/// so two replicas that disagree about who holds something cannot bounce a request between them.
public final class ReplicaPeers: Sendable {
    /// The header marking a request that a replica passed on; its value is the passing replica's URL.
    public static let proxiedHeader = HTTPField.Name("Steady-Proxied-By")!

    private let advertised: Mutex<String?>
    let fetcher: any ReplicaFetching

    /// Peers reached through `fetcher`; `url` is this replica's advertised URL, or nil until ``adopt(defaultURL:)``.
    public init(url: String?, fetcher: any ReplicaFetching) {
        advertised = Mutex(url.map(Self.trimmed))
        self.fetcher = fetcher
    }

    /// This replica's advertised API URL (`https://HOST:PORT`, no trailing slash); nil until it is known.
    public var url: String? { advertised.withLock { $0 } }

    /// Takes `url` as the advertised URL unless one was configured (`--advertise-url`); called once the API server
    /// has bound its port.
    public func adopt(defaultURL url: String) {
        advertised.withLock { current in
            if current == nil { current = Self.trimmed(url) }
        }
    }

    /// The default advertised URL: the first `--server-name`, else the listen address unless it is a wildcard,
    /// else the host name; with the bound port.
    public static func defaultURL(serverNames: [String], listenHost: String, port: Int, hostName: String) -> String {
        let isWildcard = ["", "0.0.0.0", "::", "*"].contains(listenHost)
        let host = serverNames.first ?? (isWildcard ? hostName : listenHost)
        return "https://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    /// Why `text` cannot be an advertised URL (it must be `https://HOST[:PORT]`, with no path), or nil when it can.
    public static func urlProblem(_ text: String) -> String? {
        guard let components = URLComponents(string: text), components.scheme == "https",
            let host = components.host, !host.isEmpty
        else { return "expected https://HOST:PORT, the address other replicas reach this one's API on" }
        guard components.path.isEmpty || components.path == "/", components.query == nil else {
            return "expected https://HOST:PORT with no path or query"
        }
        return nil
    }

    static func trimmed(_ url: String) -> String {
        url.hasSuffix("/") ? String(url.dropLast()) : url
    }
}

/// ``ReplicaFetching`` over HTTPS with AsyncHTTPClient, trusting only the cluster CA every replica's serving
/// certificate is issued by (full verification: chain and host name), so a caller's token goes only to a replica.
public struct HTTPReplicaFetcher: ReplicaFetching {
    let http: HTTPClient
    let tlsConfiguration: TLSConfiguration
    /// How long the head of an answer may take, from the connection on.
    let headTimeout: TimeAmount

    /// A client shared by every fetcher of the process: no redirects (a caller's token never follows one), a
    /// bounded connect time, and no read timeout, since a followed log may stay quiet for long.
    static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(3)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// A fetcher trusting exactly the certificates in `caPEM`.
    public init(caPEM: String, headTimeout: TimeAmount = .seconds(10)) throws {
        var configuration = try makeClientTLSConfiguration(caPEM: caPEM)
        configuration.shutdownTimeout = .milliseconds(500)
        tlsConfiguration = configuration
        http = Self.sharedHTTPClient
        self.headTimeout = headTimeout
    }

    public func get(replica: String, pathAndQuery: String, authorization: String?, proxiedBy: String) async throws
        -> ReplicaResponse
    {
        var request = HTTPClientRequest(url: ReplicaPeers.trimmed(replica) + pathAndQuery)
        request.tlsConfiguration = tlsConfiguration
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        request.headers.add(name: ReplicaPeers.proxiedHeader.rawName, value: proxiedBy)
        let response = try await http.execute(request, timeout: headTimeout)
        return ReplicaResponse(
            status: HTTPResponse.Status(code: Int(response.status.code)),
            contentType: response.headers.first(name: "Content-Type"), body: response.body)
    }
}
