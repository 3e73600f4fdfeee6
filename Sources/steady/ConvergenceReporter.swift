import Client
import Foundation
import Logging
import Reconciler
import ServiceLifecycle

/// What `steady up` prints while it runs: how many objects are Ready and runners synced, and who is still
/// pending, each time that changes. It reads the API like any client, with the admin kubeconfig.
struct ConvergenceReporter: Service {
    let ports: AsyncStream<Int>
    let runtime: ControllerRuntime
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { return }
            let configuration = APIClient.Configuration(
                server: "https://127.0.0.1:\(port)", caPEM: runtime.identity.caCertificatePEM,
                token: runtime.identity.adminToken)
            try await APIClient.withClient(configuration) { client in
                while !Task.isCancelled {
                    do {
                        try await ConvergenceWaiter(client: client).follow { progress in
                            Console.out("\(progress.isConverged ? "converged" : "converging"): \(progress.summary)")
                        }
                    } catch is CancellationError {
                        return
                    } catch {
                        logger.warning("cannot follow convergence", metadata: ["steady.error": "\(error)"])
                        try await Task.sleep(for: .seconds(5))
                    }
                }
            }
        }
    }
}
