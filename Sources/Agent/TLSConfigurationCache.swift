import NIOSSL
import Resources
import Synchronization
import TLSSupport

/// Client TLS configurations and stream contexts by the CA they trust, so that thousands of agents in one process
/// parse the CA once.
final class TLSConfigurationCache: Sendable {
    private let configurations = Mutex<[String: TLSConfiguration]>([:])
    private let streamContexts = Mutex<[String: NIOSSLContext]>([:])

    func configuration(trusting caPEM: String) throws -> TLSConfiguration {
        if let cached = configurations.withLock({ $0[caPEM] }) { return cached }
        var configuration = try makeClientTLSConfiguration(caPEM: caPEM)
        // Closing a connection waits this long for the controller's close_notify; a stream the agent gives up on
        // (at shutdown, or when silent) should not hold the agent for NIOSSL's default of 5 s.
        configuration.shutdownTimeout = AgentControllerClient.tlsShutdownTimeout
        return Self.keep(configuration, for: caPEM, in: configurations)
    }

    /// A TLS context for the agent stream: trusts only `caPEM` and offers only the stream's ALPN protocol.
    func streamContext(trusting caPEM: String) throws -> NIOSSLContext {
        if let cached = streamContexts.withLock({ $0[caPEM] }) { return cached }
        var configuration = try self.configuration(trusting: caPEM)
        configuration.applicationProtocols = [AgentProtocol.streamProtocol]
        return Self.keep(try NIOSSLContext(configuration: configuration), for: caPEM, in: streamContexts)
    }

    /// Stores `value` and returns it; a cache is cleared when it holds 16 (a process trusts one CA or a few).
    private static func keep<Value: Sendable>(
        _ value: Value, for caPEM: String, in cache: borrowing Mutex<[String: Value]>
    ) -> Value {
        cache.withLock { cached in
            if cached.count >= 16 { cached.removeAll() }
            cached[caPEM] = value
        }
        return value
    }
}
