import Apply
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Resources
import TLSSupport

/// A typed client of the steady API (Kubernetes REST under `/apis/steady.dev/v1`).
///
/// One shared `HTTPClient` keeps HTTP/1.1 connections alive and pools them, so concurrent calls reuse
/// connections. TLS trusts exactly the CA given in the configuration (from the kubeconfig), or the system store
/// when none is given; plain HTTP is used only when the server URL says `http://`, which only tests do.
///
/// Call ``shutdown()`` when done, or use ``withClient(_:_:)``, which always does.
public struct APIClient: Sendable {
    /// How to reach and authenticate to the server.
    public struct Configuration: Sendable {
        /// The server URL, `https://HOST:PORT` (trailing slashes are ignored).
        public var server: String
        /// The CA certificate(s) to trust, as PEM; nil trusts the system store.
        public var caPEM: String?
        /// The bearer token. Secret: never logged or printed.
        public var token: String?
        /// Connections kept to the server at most; this bounds how many requests run at once.
        public var maximumConnections: Int
        /// How long a single (non-watch) request may take.
        public var requestTimeout: Duration
        /// How long establishing a connection may take.
        public var connectTimeout: Duration
        /// Sent as `User-Agent`; the server uses the part before `/` as the default field manager.
        public var userAgent: String

        /// Creates a configuration.
        public init(
            server: String, caPEM: String? = nil, token: String? = nil, maximumConnections: Int = 32,
            requestTimeout: Duration = .seconds(60), connectTimeout: Duration = .seconds(10),
            userAgent: String = "steady/1"
        ) {
            self.server = server
            self.caPEM = caPEM
            self.token = token
            self.maximumConnections = maximumConnections
            self.requestTimeout = requestTimeout
            self.connectTimeout = connectTimeout
            self.userAgent = userAgent
        }
    }

    /// A list response: the items and the collection's resourceVersion (to watch from).
    public struct ObjectList: Sendable {
        /// The objects.
        public var items: [JSONValue]
        /// `metadata.resourceVersion` of the list.
        public var resourceVersion: String
    }

    /// The result of a server-side apply.
    public struct ApplyResponse: Sendable {
        /// The object as the server stored it (or would have, on a dry run).
        public var object: JSONValue
        /// Whether the apply created the object (HTTP 201).
        public var created: Bool
    }

    /// Dry-run modes of a write.
    public typealias DryRun = ApplyDryRun

    /// The server URL without a trailing slash.
    public let server: String
    private let token: String?
    private let http: HTTPClient
    private let requestTimeout: Duration
    private let userAgent: String

    /// Creates a client. Call ``shutdown()`` when done.
    /// - Throws: ``APIClientError`` with code ``APIClientError/Code/configuration`` when the URL is not
    ///   `https://` (or `http://`) with a host, or the CA is unusable.
    public init(configuration: Configuration) throws {
        var server = configuration.server.trimmingCharacters(in: .whitespaces)
        while server.hasSuffix("/") { server.removeLast() }
        guard let url = URL(string: server), let scheme = url.scheme?.lowercased(), url.host?.isEmpty == false,
            scheme == "https" || scheme == "http"
        else {
            throw APIClientError(
                code: .configuration,
                message: "invalid server URL \"\(configuration.server)\": use https://HOST:PORT", server: server)
        }
        var http = HTTPClient.Configuration()
        if scheme == "https" {
            do {
                var tls = try makeClientTLSConfiguration(caPEM: configuration.caPEM)
                // Closing a connection waits for the server's close_notify, which a server streaming a watch does
                // not send promptly; without this a cancelled watch holds the process for 5 s.
                tls.shutdownTimeout = .milliseconds(250)
                http.tlsConfiguration = tls
            } catch {
                throw APIClientError(
                    code: .configuration, message: "cannot trust the server's CA: \(error)", server: server,
                    underlying: error)
            }
        }
        http.httpVersion = .http1Only
        http.redirectConfiguration = .disallow
        http.timeout = .init(connect: .nanoseconds(Int64(configuration.connectTimeout.nanoseconds)), read: nil)
        http.connectionPool = .init(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, configuration.maximumConnections))
        // A CLI should fail fast and say why, not retry a refused connection until the deadline.
        http.connectionPool.retryConnectionEstablishment = false
        self.server = server
        self.token = configuration.token
        self.requestTimeout = configuration.requestTimeout
        self.userAgent = configuration.userAgent
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http)
    }

    /// Creates a client, runs `body` with it, and shuts it down whether `body` throws or not.
    public static func withClient<Result: Sendable>(
        _ configuration: Configuration, _ body: (APIClient) async throws -> Result
    ) async throws -> Result {
        let client = try APIClient(configuration: configuration)
        let result: Result
        do {
            result = try await body(client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return result
    }

    /// Closes every connection. The client cannot be used afterwards.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: Reading

    /// The object `name` of a kind.
    /// - Parameter reveal: asks for Secret values instead of `**redacted**` (admins only).
    public func get(_ info: KindInfo, name: String, reveal: Bool = false) async throws -> JSONValue {
        let response = try await send(
            .GET, path: itemPath(info, name), query: reveal ? [("reveal", "true")] : [])
        return try decode(response.body)
    }

    /// The objects of a kind, optionally filtered by a label selector (`tier=a,env!=prod`) and a field selector
    /// (`metadata.name=x`).
    public func list(
        _ info: KindInfo, labelSelector: String? = nil, fieldSelector: String? = nil
    ) async throws -> ObjectList {
        var query: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { query.append(("fieldSelector", fieldSelector)) }
        let response = try await send(.GET, path: collectionPath(info), query: query)
        let value = try decode(response.body)
        return ObjectList(
            items: value["items"]?.arrayValue ?? [],
            resourceVersion: value["metadata"]?["resourceVersion"]?.stringValue ?? "")
    }

    /// The media type asking for a `meta.k8s.io/v1 Table` (falling back to JSON), as kubectl asks for it.
    public static let tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

    /// The objects of a kind (or the one named) as the server's Table: the columns `get` prints.
    public func table(_ info: KindInfo, name: String? = nil, labelSelector: String? = nil) async throws -> ServerTable {
        var query: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { query.append(("labelSelector", labelSelector)) }
        let path = name.map { itemPath(info, $0) } ?? collectionPath(info)
        let response = try await send(.GET, path: path, query: query, accept: Self.tableAccept)
        return try ServerTable(try decode(response.body), server: server)
    }

    /// Which runners hold `objects` in their slice (or are them), and whether each agent has applied a slice
    /// computed from at least `revision` (admins only).
    public func convergence(revision: Int64, objects: [SliceKey]) async throws -> ConvergenceReport {
        let body = try JSONEncoder().encode(ConvergenceRequest(revision: revision, objects: objects))
        let response = try await send(.POST, path: ConvergenceRequest.path, query: [], body: body)
        do {
            return try JSONDecoder().decode(ConvergenceReport.self, from: response.body)
        } catch {
            throw APIClientError(
                code: .invalidResponse, message: "the server at \(server) answered the convergence query with "
                    + "something steady cannot read", server: server)
        }
    }

    // MARK: Writing

    /// Creates an object (POST).
    public func create(_ info: KindInfo, _ object: JSONValue, dryRun: Bool = false) async throws -> JSONValue {
        let response = try await send(
            .POST, path: collectionPath(info), query: dryRunQuery(dryRun), body: object.jsonData(),
            contentType: "application/json")
        return try decode(response.body)
    }

    /// Server-side apply of `object` (the fields this manager wants to own), creating it when missing.
    /// - Parameters:
    ///   - fieldManager: the manager that owns the applied fields.
    ///   - force: takes ownership of fields other managers own instead of failing with a conflict.
    ///   - dryRun: computes the result without storing it.
    public func apply(
        _ info: KindInfo, _ object: JSONValue, fieldManager: String, force: Bool = false, dryRun: Bool = false
    ) async throws -> ApplyResponse {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        return try await apply(
            info, name: name, body: object.jsonData(), fieldManager: fieldManager, force: force, dryRun: dryRun)
    }

    /// Server-side apply of a body given as YAML or JSON bytes.
    public func apply(
        _ info: KindInfo, name: String, body: Data, fieldManager: String, force: Bool = false, dryRun: Bool = false
    ) async throws -> ApplyResponse {
        var query: [(String, String)] = [("fieldManager", fieldManager)]
        if force { query.append(("force", "true")) }
        query += dryRunQuery(dryRun)
        let response = try await send(
            .PATCH, path: itemPath(info, name), query: query, body: body,
            contentType: "application/apply-patch+yaml")
        return ApplyResponse(object: try decode(response.body), created: response.status == 201)
    }

    /// Applies a JSON merge patch to the object, or to its `status` when `subresource` is `status`.
    public func mergePatch(
        _ info: KindInfo, name: String, patch: JSONValue, subresource: String? = nil, fieldManager: String? = nil,
        dryRun: Bool = false
    ) async throws -> JSONValue {
        var query = dryRunQuery(dryRun)
        if let fieldManager { query.append(("fieldManager", fieldManager)) }
        let response = try await send(
            .PATCH, path: itemPath(info, name, subresource: subresource), query: query, body: patch.jsonData(),
            contentType: "application/merge-patch+json")
        return try decode(response.body)
    }

    /// Replaces the object (PUT), or its status; `metadata.resourceVersion` must be the current one.
    public func update(
        _ info: KindInfo, _ object: JSONValue, subresource: String? = nil, fieldManager: String? = nil,
        dryRun: Bool = false
    ) async throws -> JSONValue {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        var query = dryRunQuery(dryRun)
        if let fieldManager { query.append(("fieldManager", fieldManager)) }
        let response = try await send(
            .PUT, path: itemPath(info, name, subresource: subresource), query: query, body: object.jsonData(),
            contentType: "application/json")
        return try decode(response.body)
    }

    /// Deletes the object and returns it as it was (or as marked for deletion, when it has finalizers).
    public func delete(_ info: KindInfo, name: String, dryRun: Bool = false) async throws -> JSONValue {
        let response = try await send(.DELETE, path: itemPath(info, name), query: dryRunQuery(dryRun))
        return try decode(response.body)
    }

    // MARK: Watching

    /// Watches a kind: `ADDED` for every existing object first (when `resourceVersion` is nil), then every change,
    /// read from the response line by line as it streams.
    ///
    /// The request starts when iteration starts and runs in the iterating task, so cancelling that task ends it.
    /// The sequence ends when the server closes the watch (it does after a while): watch again from the last
    /// seen resourceVersion. A `410 Gone` (too old a resourceVersion) is thrown as ``APIClientError`` with
    /// ``APIClientError/isGone``: list again, then watch.
    /// - Parameter asTable: asks for each event's object as a one-row Table (read it with ``ServerTable``).
    public func watch(
        _ info: KindInfo, name: String? = nil, labelSelector: String? = nil, resourceVersion: String? = nil,
        timeoutSeconds: Int? = nil, asTable: Bool = false
    ) -> WatchEvents {
        var query: [(String, String)] = [("watch", "true")]
        if let resourceVersion, !resourceVersion.isEmpty { query.append(("resourceVersion", resourceVersion)) }
        if let labelSelector, !labelSelector.isEmpty { query.append(("labelSelector", labelSelector)) }
        if let name { query.append(("fieldSelector", "metadata.name=\(name)")) }
        if let timeoutSeconds { query.append(("timeoutSeconds", String(timeoutSeconds))) }
        return WatchEvents(
            client: self, path: collectionPath(info), query: query,
            accept: asTable ? Self.tableAccept : "application/json")
    }

    /// One event of a watch.
    public struct WatchEvent: Sendable, Equatable {
        /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
        public var type: String
        /// The object (for `ERROR`, a `Status`).
        public var object: JSONValue

        /// Creates an event.
        public init(type: String, object: JSONValue) {
            self.type = type
            self.object = object
        }
    }

    /// The events of one watch request, as an asynchronous sequence.
    public struct WatchEvents: AsyncSequence, Sendable {
        /// A watch event.
        public typealias Element = WatchEvent
        let client: APIClient
        let path: String
        let query: [(String, String)]
        let accept: String

        /// Starts reading.
        public func makeAsyncIterator() -> Iterator {
            Iterator(client: client, path: path, query: query, accept: accept)
        }

        /// Sends the request on the first `next()`, then splits the streamed body into lines.
        public struct Iterator: AsyncIteratorProtocol {
            let client: APIClient
            let path: String
            let query: [(String, String)]
            let accept: String
            private var body: HTTPClientResponse.Body.AsyncIterator?
            private var buffer: [UInt8] = []
            private var isFinished = false

            init(client: APIClient, path: String, query: [(String, String)], accept: String) {
                self.client = client
                self.path = path
                self.query = query
                self.accept = accept
            }

            /// The next event, or nil when the server ended the watch.
            public mutating func next() async throws -> WatchEvent? {
                if isFinished { return nil }
                if body == nil {
                    let response = try await client.execute(
                        .GET, path: path, query: query, body: nil, contentType: nil, accept: accept,
                        deadline: .distantFuture)
                    guard response.status == .ok else {
                        let data = try await client.collect(response)
                        throw APIClientError.decoding(
                            status: Int(response.status.code), body: data, server: client.server)
                    }
                    body = response.body.makeAsyncIterator()
                }
                while true {
                    if let newline = buffer.firstIndex(of: 0x0A) {
                        let line = Array(buffer[..<newline])
                        buffer.removeSubrange(...newline)
                        if let event = try parse(line) { return event }
                        continue
                    }
                    let chunk: ByteBuffer?
                    do {
                        chunk = try await body?.next()
                    } catch {
                        isFinished = true
                        throw APIClientError.connection(error, server: client.server)
                    }
                    guard let chunk else {
                        isFinished = true
                        let rest = buffer
                        buffer = []
                        return try parse(rest)
                    }
                    buffer.append(contentsOf: chunk.readableBytesView)
                    if buffer.count > 64 * 1024 * 1024 {
                        isFinished = true
                        throw APIClientError(
                            code: .invalidResponse, message: "a watch event is larger than 64 MiB",
                            server: client.server)
                    }
                }
            }

            private func parse(_ line: [UInt8]) throws -> WatchEvent? {
                guard line.contains(where: { $0 != 0x20 && $0 != 0x0D && $0 != 0x09 }) else { return nil }
                let value: JSONValue
                do {
                    value = try JSONValue.parse(Data(line))
                } catch {
                    throw APIClientError(
                        code: .invalidResponse, message: "the server sent a watch event that is not JSON",
                        server: client.server)
                }
                guard let type = value["type"]?.stringValue, let object = value["object"] else {
                    throw APIClientError(
                        code: .invalidResponse, message: "the server sent a watch event without type or object",
                        server: client.server)
                }
                if type == "ERROR" {
                    throw APIClientError.decoding(
                        status: Int(object["code"]?.intValue ?? 500), body: object.jsonData(), server: client.server)
                }
                return WatchEvent(type: type, object: object)
            }
        }
    }

    // MARK: Paths

    /// `/apis/steady.dev/v1/routes`.
    public func collectionPath(_ info: KindInfo) -> String {
        "/apis/\(API.group)/\(API.version)/\(info.plural)"
    }

    /// `/apis/steady.dev/v1/routes/NAME[/status]`, with the name percent-encoded.
    public func itemPath(_ info: KindInfo, _ name: String, subresource: String? = nil) -> String {
        var path = "\(collectionPath(info))/\(Self.percentEncoded(name))"
        if let subresource { path += "/\(Self.percentEncoded(subresource))" }
        return path
    }

    /// Encodes everything but RFC 3986 unreserved characters.
    static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.append(Character(Unicode.Scalar(byte)))
            default:
                result += "%" + Hex.encode(CollectionOfOne(byte), uppercase: true)
            }
        }
        return result
    }

    private func dryRunQuery(_ dryRun: Bool) -> [(String, String)] {
        dryRun ? [("dryRun", "All")] : []
    }

    // MARK: Transport

    private struct Response {
        var status: Int
        var body: Data
    }

    /// The text a GET of `path` answers (`/metrics`, `/readyz?verbose`); a non-2xx answer is thrown as
    /// ``APIClientError``.
    public func text(path: String) async throws -> String {
        String(decoding: try await send(.GET, path: path, query: [], accept: "text/plain").body, as: UTF8.self)
    }

    /// Sends a request and reads the whole answer; a non-2xx answer is thrown as ``APIClientError``.
    private func send(
        _ method: HTTPMethod, path: String, query: [(String, String)], body: Data? = nil, contentType: String? = nil,
        accept: String = "application/json"
    ) async throws -> Response {
        let deadline = NIODeadline.now() + .nanoseconds(Int64(requestTimeout.nanoseconds))
        let response = try await execute(
            method, path: path, query: query, body: body, contentType: contentType, accept: accept, deadline: deadline)
        let data = try await collect(response)
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            throw APIClientError.decoding(status: status, body: data, server: server)
        }
        return Response(status: status, body: data)
    }

    func execute(
        _ method: HTTPMethod, path: String, query: [(String, String)], body: Data?, contentType: String?,
        accept: String = "application/json", deadline: NIODeadline
    ) async throws -> HTTPClientResponse {
        var url = server + path
        if !query.isEmpty {
            url += "?" + query.map { "\(Self.percentEncoded($0.0))=\(Self.percentEncoded($0.1))" }
                .joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: accept)
        request.headers.add(name: "User-Agent", value: userAgent)
        if let token, !token.isEmpty {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            return try await http.execute(request, deadline: deadline)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw APIClientError.connection(error, server: server)
        }
    }

    func collect(_ response: HTTPClientResponse) async throws -> Data {
        do {
            let buffer = try await response.body.collect(upTo: 256 * 1024 * 1024)
            return Data(buffer.readableBytesView)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw APIClientError.connection(error, server: server)
        }
    }

    private func decode(_ data: Data) throws -> JSONValue {
        do {
            return try JSONValue.parse(data)
        } catch {
            throw APIClientError(
                code: .invalidResponse, message: "the server at \(server) answered with something that is not JSON",
                server: server)
        }
    }
}

extension Duration {
    /// The whole duration in nanoseconds, saturating.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product &+ attoseconds / 1_000_000_000
    }
}
