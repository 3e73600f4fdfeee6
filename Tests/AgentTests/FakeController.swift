import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOSSL
@testable import Reconciler
import Resources
import ServiceLifecycle
import Synchronization
import SteadyTesting

/// A controller that speaks the agent protocol over TLS and records what agents ask; the test drives its agent
/// streams by hand.
actor FakeController {
    struct SliceRequest: Sendable {
        var revision: String?
        var digest: String?
        var authorization: String?
    }

    private(set) var enrollments: [EnrollmentRequest] = []
    private(set) var enrollAuthorizations: [String] = []
    private(set) var sliceRequests: [SliceRequest] = []
    /// Reports arrive on the event loop, so they are kept outside the actor.
    private nonisolated let receivedReports = Mutex<[AgentReport]>([])
    var reports: [AgentReport] { receivedReports.withLock { $0 } }
    private var streams: [any Channel] = []
    /// Answers to give instead of the normal ones.
    var enrollFailure: (HTTPResponse.Status, String)?
    var sliceFailure: (HTTPResponse.Status, String)?
    var credential = "cred-for-web-1"

    func setSliceFailure(_ failure: (HTTPResponse.Status, String)?) { sliceFailure = failure }
    func setEnrollFailure(_ failure: (HTTPResponse.Status, String)?) { enrollFailure = failure }

    /// Sends a message on the newest slice stream.
    func send(_ message: SliceMessage) {
        streams.last?.writeAndFlush(Self.line(message), promise: nil)
    }

    /// Sends a message on every open slice stream.
    func broadcast(_ message: SliceMessage) {
        for stream in streams { stream.writeAndFlush(Self.line(message), promise: nil) }
    }

    /// Sends raw bytes on the newest slice stream.
    func sendRaw(_ text: String) { streams.last?.writeAndFlush(ByteBuffer(string: text), promise: nil) }

    /// Ends the newest slice stream, as a restarting controller does.
    func disconnect() { streams.last?.close(promise: nil) }

    static func line(_ message: SliceMessage) -> ByteBuffer {
        ByteBuffer(bytes: Array((try? JSONValue(encoding: message))?.jsonData() ?? Data()) + [0x0A])
    }

    var connectionCount: Int { streams.count }

    fileprivate func enroll(_ request: EnrollmentRequest, authorization: String) throws -> Response {
        enrollAuthorizations.append(authorization)
        if let (status, message) = enrollFailure { return FakeController.status(status, message) }
        enrollments.append(request)
        return FakeController.json(EnrollmentResponse(runner: request.name, credential: credential))
    }

    fileprivate func authorize(_ request: SliceRequest) -> AgentStreamRefusal? {
        sliceRequests.append(request)
        if let (status, message) = sliceFailure { return AgentStreamRefusal(refused: Int(status.code), message: message) }
        guard request.authorization == "Bearer \(credential)" else {
            return AgentStreamRefusal(refused: 401, message: "unknown credential")
        }
        return nil
    }

    fileprivate func register(_ stream: any Channel) { streams.append(stream) }

    /// Serves an agent stream with the controller's own framing; the test writes what goes down.
    nonisolated func serveStream(_ connection: AgentStreamServer.Connection, logger: Logger) async {
        await AgentStreamServer.accept(
            connection, helloTimeout: .seconds(10), logger: logger,
            authorize: { hello in
                await self.authorize(
                    SliceRequest(
                        revision: String(hello.revision), digest: hello.digest,
                        authorization: "Bearer \(hello.credential)"))
            },
            receive: { _, report in self.receivedReports.withLock { $0.append(report) } },
            start: { _ in await self.register(connection.channel) })
    }

    static func json(_ value: some Encodable) -> Response {
        let data = (try? JSONValue(encoding: value))?.jsonData() ?? Data()
        return Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func status(_ status: HTTPResponse.Status, _ message: String) -> Response {
        let body: JSONValue = [
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "message": .string(message),
            "code": .int(Int64(status.code)),
        ]
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: body.jsonData())))
    }

    /// Serves the fake on a loopback port with a fresh CA while `body` runs.
    static func serve<T: Sendable>(
        _ fake: FakeController, _ body: @Sendable (_ url: String, _ identity: ControllerIdentity) async throws -> T
    ) async throws -> T {
        let directory = try TemporaryDirectory(prefix: "fake-controller")
        defer { directory.remove() }
        let identity = try ControllerIdentity.loadOrCreate(dataDirectory: directory.url)
        let router = Router()
        router.get(RouterPath(stringLiteral: AgentProtocol.caPath)) { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/x-pem-file"],
                body: .init(byteBuffer: ByteBuffer(string: identity.caCertificatePEM)))
        }
        router.post(RouterPath(stringLiteral: AgentProtocol.enrollPath)) { request, context in
            let enrollment = try await request.decode(as: EnrollmentRequest.self, context: context)
            return try await fake.enroll(enrollment, authorization: request.headers[.authorization] ?? "")
        }
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let application = Application(
            router: router,
            server: try ControllerChannel.builder(
                tlsConfiguration: identity.tlsConfiguration,
                agentStreams: { connection, logger in await fake.serveStream(connection, logger: logger) }),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) },
            logger: {
                var logger = Logger(label: "fake-controller")
                logger.logLevel = .critical
                return logger
            }())
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await application.runService()
                return nil
            }
            defer { group.cancelAll() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            return try await body("https://127.0.0.1:\(port)", identity)
        }
    }
}

struct FakeFailure: Error {
    var status: HTTPResponse.Status
    var message: String
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func eventually(
    timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
