import Client
import NIOSSL
import Synchronization

/// Client TLS configurations by the CA they trust, so that thousands of agents in one process parse the CA once.
final class TLSConfigurationCache: Sendable {
    private let configurations = Mutex<[String: TLSConfiguration]>([:])

    func configuration(trusting caPEM: String) throws -> TLSConfiguration {
        if let cached = configurations.withLock({ $0[caPEM] }) { return cached }
        var configuration = try makeClientTLSConfiguration(caPEM: caPEM)
        // Closing a connection waits this long for the controller's close_notify; a stream the agent gives up on
        // (at shutdown, or when silent) should not hold the agent for NIOSSL's default of 5 s.
        configuration.shutdownTimeout = AgentControllerClient.tlsShutdownTimeout
        return configurations.withLock { cache in
            if cache.count >= 16 { cache.removeAll() }
            cache[caPEM] = configuration
            return configuration
        }
    }
}
