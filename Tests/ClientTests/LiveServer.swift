import Client
import Events
import Foundation
import Hummingbird
import Logging
import NIOSSL
import Reconciler
import Resources
import SteadyTesting

/// The real API server on a loopback port (plain HTTP, port 0) with a fresh store, for tests that talk to it
/// through `APIClient` over a socket.
struct LiveServer {
    static let token = "client-test-token"

    /// Shutting the server down by cancellation logs errors that say nothing about the test.
    static var quietLogger: Logger {
        var logger = Logger(label: "client-test")
        logger.logLevel = .critical
        return logger
    }

    struct Context: Sendable {
        let client: APIClient
        let url: String
        let fixture: StoreFixture
        let directory: TemporaryDirectory
        /// The server's RemoteRun output, which the `log` subresource serves.
        let runOutput: RunOutputStore

        /// Writes a manifest file and returns its path.
        func manifest(_ text: String, named name: String = "manifests.yaml") throws -> String {
            try directory.write(text, to: name)
            return directory.file(name).path
        }

        /// The connection flags a command needs to reach this server.
        var flags: [String] { ["--server", url, "--token", LiveServer.token] }
    }

    /// Starts the server, runs `body`, stops the server.
    static func with(
        watchSeconds: Int = 30, tls: TLSConfiguration? = nil, caPEM: String? = nil, events: EventPipeline? = nil,
        _ body: @Sendable (Context) async throws -> Void
    ) async throws {
        let fixture = try StoreFixture()
        let directory = try TemporaryDirectory(prefix: "steady-client-test")
        defer {
            fixture.remove()
            directory.remove()
        }
        let runOutput = RunOutputStore(directory: directory.file("run-output"))
        let server = APIServer(
            objects: ObjectService(store: fixture.store),
            authenticator: AdminTokenAuthenticator(adminToken: token), events: events,
            configuration: .init(
                host: "127.0.0.1", port: 0, tls: tls, watchLimits: .init(maximumSeconds: watchSeconds)),
            runOutput: runOutput, logger: Self.quietLogger)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let application = try server.makeApplication { port in
            continuation.yield(port)
            continuation.finish()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await application.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            let url = "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)"
            do {
                try await APIClient.withClient(.init(server: url, caPEM: caPEM, token: token)) { client in
                    try await body(Context(
                        client: client, url: url, fixture: fixture, directory: directory, runOutput: runOutput))
                }
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }
}

/// Manifest snippets.
enum Manifests {
    static func route(_ name: String, actions: [String] = ["notify"], input: String = "", labels: String = "") -> String {
        let list = actions.map { "\"\($0)\"" }.joined(separator: ", ")
        let labelBlock = labels.isEmpty ? "" : "\n  labels: {\(labels)}"
        return """
            apiVersion: steady.dev/v1
            kind: Route
            metadata:
              name: \(name)\(labelBlock)
            spec:
              input: '\(input)'
              actions: [\(list)]

            """
    }

    static func action(_ name: String, url: String = "https://example.test/hook") -> String {
        """
        apiVersion: steady.dev/v1
        kind: Action
        metadata: {name: \(name)}
        spec:
          type: webhook
          webhook: {url: "\(url)"}

        """
    }

    static func join(_ documents: [String]) -> String {
        documents.joined(separator: "---\n")
    }
}
