import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOSSL
import Reconciler
import Synchronization

/// One gRPC client to etcd, shared by a store and its fenced views: its connections, its open watches and the
/// mapping of gRPC failures to `StoreError`s.
final class EtcdConnection: Sendable {
    typealias Transport = HTTP2ClientTransport.Posix

    let client: GRPCClient<Transport>
    let kv: Etcdserverpb_KV.Client<Transport>
    let watches: Etcdserverpb_Watch.Client<Transport>
    let leases: Etcdserverpb_Lease.Client<Transport>
    let endpoints: String
    private let runner: Task<Void, Never>
    private let state = Mutex(State())

    private struct State {
        var closed = false
        var nextTask = 0
        var tasks: [Int: Task<Void, Never>] = [:]
    }

    /// How long one request may take, waiting for a connection included.
    static let requestTimeout: Duration = .seconds(10)
    /// How long a watch keeps trying to resume on a lost connection before it ends with `unavailable`.
    static let watchResumeWindow: Duration = .seconds(60)

    init(configuration: EtcdConfiguration) throws {
        let pairs = configuration.hostsAndPorts.map { ($0.host == "localhost" ? "127.0.0.1" : $0.host, $0.port) }
        guard let first = pairs.first else { throw EtcdConfigurationError("--store names no etcd endpoint") }
        let target: any ResolvableTarget
        if pairs.allSatisfy({ IPv4Address(parsing: $0.0) }) {
            target = .ipv4(pairs: pairs.map { (host: $0.0, port: $0.1) })
        } else if pairs.count == 1 {
            target = .dns(host: first.0, port: first.1)
        } else {
            throw EtcdConfigurationError(
                "--store: give several etcd endpoints as IPv4 addresses, or one DNS name that resolves to them all")
        }
        let security: Transport.TransportSecurity
        if let caCertificate = configuration.caCertificate {
            security = .tls { tls in
                tls.trustRoots = .certificates([.file(path: caCertificate, format: .pem)])
                if let certificate = configuration.clientCertificate, let key = configuration.clientKey {
                    tls.certificateChain = [.file(path: certificate, format: .pem)]
                    tls.privateKey = .file(path: key, format: .pem)
                }
            }
        } else {
            security = .plaintext
        }
        var transportConfiguration = Transport.Config.defaults
        transportConfiguration.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
            channel.eventLoop.makeCompletedFuture {
                let operations = channel.pipeline.syncOperations
                // Below the HTTP/2 handler: right after TLS, or first on a plaintext connection.
                if let tls = try? operations.handler(type: NIOSSLClientHandler.self) {
                    try operations.addHandler(HTTP2PingResponder(), position: .after(tls))
                } else {
                    try operations.addHandler(HTTP2PingResponder(), position: .first)
                }
            }
        }
        let transport = try HTTP2ClientTransport.Posix(
            target: target, transportSecurity: security, config: transportConfiguration)
        let client = GRPCClient(transport: transport)
        self.client = client
        kv = Etcdserverpb_KV.Client(wrapping: client)
        watches = Etcdserverpb_Watch.Client(wrapping: client)
        leases = Etcdserverpb_Lease.Client(wrapping: client)
        endpoints = configuration.endpoints.joined(separator: ",")
        runner = Task { try? await client.runConnections() }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Cancels every watch and task started here, then stops the connections. Calling it again is harmless.
    func close() {
        let tasks = state.withLock { state -> [Task<Void, Never>] in
            guard !state.closed else { return [] }
            state.closed = true
            defer { state.tasks = [:] }
            return Array(state.tasks.values)
        }
        for task in tasks { task.cancel() }
        client.beginGracefulShutdown()
    }

    /// Runs `body` as a task that `close()` cancels; nil when the connection is already closed.
    @discardableResult
    func spawn(_ body: @escaping @Sendable () async -> Void) -> (id: Int, task: Task<Void, Never>)? {
        state.withLock { state in
            guard !state.closed else { return nil }
            let id = state.nextTask
            state.nextTask += 1
            let task = Task {
                await body()
                self.forget(id)
            }
            state.tasks[id] = task
            return (id, task)
        }
    }

    /// Forgets a finished task.
    func forget(_ id: Int) {
        _ = state.withLock { $0.tasks.removeValue(forKey: id) }
    }

    /// Runs one request with the request timeout, mapping its failure to a `StoreError`.
    func call<Response: Sendable>(
        _ what: String, timeout: Duration = requestTimeout,
        _ body: (EtcdConnection, CallOptions) async throws -> Response
    ) async throws -> Response {
        guard !isClosed else { throw StoreError(code: .unavailable, message: "the etcd store is closed") }
        var options = CallOptions.defaults
        options.timeout = timeout
        options.waitForReady = true
        do {
            return try await body(self, options)
        } catch {
            throw storeError(error, doing: what)
        }
    }

    /// A `StoreError` for a gRPC failure: `compacted` for etcd's compacted revision, `unavailable` otherwise.
    func storeError(_ error: any Error, doing what: String) -> any Error {
        if error is StoreError || error is CancellationError { return error }
        if isClosed { return StoreError(code: .unavailable, message: "the etcd store is closed") }
        if let error = error as? RPCError {
            if error.code == .outOfRange && error.message.contains("compacted") {
                return StoreError(code: .compacted, message: "etcd \(what): \(error.message)")
            }
            return StoreError(
                code: .unavailable, message: "etcd \(what) at \(endpoints): \(error.code): \(error.message)")
        }
        return StoreError(code: .unavailable, message: "etcd \(what) at \(endpoints): \(error)")
    }
}

extension EtcdConnection {
    /// Asks etcd for a count once, without waiting for a connection; the TLS failure that stops it, described, if
    /// that is what stops it (a wrong CA, a client certificate etcd refuses or none).
    func probeTLSFailure() async -> String? {
        var options = CallOptions.defaults
        options.timeout = .seconds(5)
        options.waitForReady = false
        var request = Etcdserverpb_RangeRequest()
        request.key = Data([0])
        request.countOnly = true
        do {
            _ = try await kv.range(request, options: options)
            return nil
        } catch {
            // The cause chain is short (an RPCError around the transport's error); the bound keeps it so.
            var current: (any Error)? = error
            for _ in 0..<8 {
                guard let error = current else { return nil }
                if error is NIOSSLError || error is BoringSSLError { return "\(error)" }
                current = (error as? RPCError)?.cause
            }
            return nil
        }
    }
}

/// Whether a string is a dotted IPv4 address.
private func IPv4Address(parsing text: String) -> Bool {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
}
