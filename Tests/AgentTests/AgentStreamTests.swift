import Foundation
import Logging
import NIOCore
import Resources
import SteadyTesting
import Testing

@testable import Agent
@testable import Reconciler

/// The agent stream on a real TLS port of the controller's API server: only a runner's own credential opens its
/// stream, reports become Runner status, and bad lines are refused.
@Suite(.timeLimit(.minutes(5))) struct AgentStreamTests {
    static let fleet = """
        apiVersion: steady.dev/v1
        kind: Runner
        metadata: {name: web-1, labels: {role: web}}
        """

    struct Controller {
        let url: String
        let caPEM: String
        let objects: ObjectService
        let gateway: AgentGateway

        func client() throws -> AgentControllerClient {
            try AgentControllerClient(controllerURL: url, caPEM: caPEM, http: .shared, requestTimeout: .seconds(5))
        }
    }

    func withController(_ body: @Sendable (Controller) async throws -> Void) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let directory = try TemporaryDirectory(prefix: "agent-stream")
        defer { directory.remove() }
        let identity = try ControllerIdentity.loadOrCreate(dataDirectory: directory.url)
        let objects = ObjectService(store: fixture.store)
        let credentials = AgentCredentials(store: fixture.store, adminToken: "admin-token")
        let logger = Logger(label: "test")
        let gateway = AgentGateway(
            objects: objects, credentials: credentials,
            configuration: .init(heartbeatTimeout: .seconds(5), batchInterval: .milliseconds(2)), logger: logger)
        for document in try ManifestDocuments.parse(Self.fleet, file: "fleet.yaml") {
            let info = try ManifestValidation.kindInfo(of: document.value)
            _ = try await objects.create(info, body: document.value, options: WriteOptions(fieldManager: "test"))
        }
        let server = APIServer(
            objects: objects, authenticator: credentials,
            configuration: .init(host: "127.0.0.1", port: 0, tls: identity.tlsConfiguration), agents: gateway,
            caCertificatePEM: identity.caCertificatePEM, logger: logger)
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let application = try server.makeApplication { port in portContinuation.yield(port) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await gateway.run() }
            group.addTask { try await application.runService() }
            defer { group.cancelAll() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            try await body(
                Controller(
                    url: "https://127.0.0.1:\(port)", caPEM: identity.caCertificatePEM, objects: objects,
                    gateway: gateway))
        }
    }

    /// The first message (or refusal) on a stream opened with these credentials.
    func firstMessage(_ controller: Controller, runner: String, credential: String) async throws -> SliceMessage? {
        try await controller.client().withStream(runner: runner, credential: credential, revision: 0, digest: nil) {
            incoming, _ in
            var decoder = SliceStreamDecoder(runner: runner)
            for try await chunk in incoming {
                if let message = try decoder.feed(chunk.readableBytesView).first { return message }
            }
            return nil
        }
    }

    @Test func onlyTheRunnersOwnCredentialOpensItsStream() async throws {
        try await withController { controller in
            let credential = try await controller.gateway.enrollRunner(name: "edge-1", labels: [:])

            let own = try await firstMessage(controller, runner: "edge-1", credential: credential)
            #expect(own?.type == .snapshot)

            let other = await #expect(throws: AgentError.self) {
                try await firstMessage(controller, runner: "web-1", credential: credential)
            }
            #expect(other?.code == .forbidden)
            #expect(other?.message.contains("own runner") == true, "\(String(describing: other))")

            let unknown = await #expect(throws: AgentError.self) {
                try await firstMessage(controller, runner: "edge-1", credential: "not-a-credential")
            }
            #expect(unknown?.code == .credentialRevoked)

            let admin = await #expect(throws: AgentError.self) {
                try await firstMessage(controller, runner: "edge-1", credential: "admin-token")
            }
            #expect(admin?.code == .forbidden)
        }
    }

    @Test func reportsUpTheStreamBecomeRunnerStatus() async throws {
        try await withController { controller in
            let credential = try await controller.gateway.enrollRunner(name: "edge-1", labels: [:])
            try await controller.client().withStream(runner: "edge-1", credential: credential, revision: 0, digest: nil) {
                incoming, reports in
                var decoder = SliceStreamDecoder(runner: "edge-1")
                var iterator = incoming.makeAsyncIterator()
                var first: SliceMessage?
                while first == nil, let chunk = try await iterator.next() {
                    first = try decoder.feed(chunk.readableBytesView).first
                }
                let snapshot = try #require(first)
                try await reports.send(
                    AgentReport(
                        hostname: "edge-host", agentVersion: "test", observedSliceRevision: snapshot.revision,
                        sliceDigest: snapshot.digest, synced: true))
                let connected = await eventually {
                    let runner = try? await controller.objects.get(Kinds.runner, name: "edge-1")
                    let conditions = runner?["status"]?["conditions"]?.arrayValue ?? []
                    return conditions.contains { $0["type"] == "Connected" && $0["status"] == "True" }
                        && runner?["status"]?["hostname"] == "edge-host"
                }
                #expect(connected)
            }
        }
    }

    @Test func aLineThatIsNotAReportIsRefusedAndEndsTheStream() async throws {
        try await withController { controller in
            let credential = try await controller.gateway.enrollRunner(name: "edge-1", labels: [:])
            let refusal = await #expect(throws: AgentError.self) {
                try await controller.client().withStream(
                    runner: "edge-1", credential: credential, revision: 0, digest: nil
                ) { incoming, reports in
                    try await reports.outbound.write(ByteBuffer(string: "{\"synced\": \"yes\"}\n"))
                    var decoder = SliceStreamDecoder(runner: "edge-1")
                    for try await chunk in incoming { _ = try decoder.feed(chunk.readableBytesView) }
                }
            }
            #expect(refusal?.code == .unexpectedResponse)
            #expect(refusal?.message.contains("not an agent report") == true, "\(String(describing: refusal))")
        }
    }
}
