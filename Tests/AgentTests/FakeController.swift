import Foundation
import HTTPTypes
import Hummingbird
import Logging
import HummingbirdTLS
import NIOCore
import NIOSSL
@testable import Reconciler
import Resources
import ServiceLifecycle
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
    private(set) var reports: [AgentReport] = []
    private var streams: [AsyncStream<[UInt8]>.Continuation] = []
    /// Answers to give instead of the normal ones.
    var enrollFailure: (HTTPResponse.Status, String)?
    var sliceFailure: (HTTPResponse.Status, String)?
    var credential = "cred-for-web-1"

    func setSliceFailure(_ failure: (HTTPResponse.Status, String)?) { sliceFailure = failure }
    func setEnrollFailure(_ failure: (HTTPResponse.Status, String)?) { enrollFailure = failure }

    /// Sends a message on the newest slice stream.
    func send(_ message: SliceMessage) {
        streams.last?.yield(Array((try? JSONValue(encoding: message))?.jsonData() ?? Data()) + [0x0A])
    }

    /// Sends a message on every open slice stream.
    func broadcast(_ message: SliceMessage) {
        let line = Array((try? JSONValue(encoding: message))?.jsonData() ?? Data()) + [0x0A]
        for stream in streams { stream.yield(line) }
    }

    /// Sends raw bytes on the newest slice stream.
    func sendRaw(_ text: String) { streams.last?.yield(Array(text.utf8)) }

    /// Ends the newest slice stream, as a restarting controller does.
    func disconnect() { streams.last?.finish() }

    var connectionCount: Int { streams.count }

    fileprivate func enroll(_ request: EnrollmentRequest, authorization: String) throws -> Response {
        enrollAuthorizations.append(authorization)
        if let (status, message) = enrollFailure { return FakeController.status(status, message) }
        enrollments.append(request)
        return FakeController.json(EnrollmentResponse(runner: request.name, credential: credential))
    }

    fileprivate func connect(_ request: SliceRequest) -> Result<AsyncStream<[UInt8]>, FakeFailure> {
        sliceRequests.append(request)
        if let (status, message) = sliceFailure { return .failure(FakeFailure(status: status, message: message)) }
        guard request.authorization == "Bearer \(credential)" else {
            return .failure(FakeFailure(status: .unauthorized, message: "unknown credential"))
        }
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
        streams.append(continuation)
        return .success(stream)
    }

    fileprivate func record(_ report: AgentReport) { reports.append(report) }

    /// Serves an agent stream with the controller's own framing; the test writes what goes down.
    nonisolated func serveStream(_ connection: AgentStreamServer.Connection, logger: Logger) async {
        await AgentStreamServer.pump(
            connection, helloTimeout: .seconds(10), logger: logger,
            open: { hello in
                await self.connect(
                    SliceRequest(
                        revision: String(hello.revision), digest: hello.digest,
                        authorization: "Bearer \(hello.credential)")
                ).mapError { AgentStreamRefusal(refused: Int($0.status.code), message: $0.message) }
            },
            encode: { ByteBuffer(bytes: $0) },
            receive: { _, report in await self.record(report) })
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
