import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Resources
import ServiceLifecycle
import Synchronization

/// The plain events port (`--events-listen`), served on SwiftNIO's HTTP/1 codec with one small handler per
/// connection: a request is read on its event loop, handed to the pipeline's writer, and answered on the same loop once
/// the event is durable. No task is made per connection or per request; the events port is where throughput counts.
public final class EventServer: Service {
    let configuration: EventListener.Configuration
    let pipeline: EventPipeline
    let onRunning: @Sendable (Int) async -> Void
    private let tls: NIOSSLContext?
    private let tokenDigest: [UInt8]?
    /// Open connections, closed when the server stops.
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])

    /// A server for `pipeline`, a service to run beside it; `onRunning` gets the bound port.
    public init(
        configuration: EventListener.Configuration, pipeline: EventPipeline,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.pipeline = pipeline
        self.onRunning = onRunning
        if let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            self.tls = try NIOSSLContext(configuration: tls)
        } else {
            self.tls = nil
        }
        tokenDigest = configuration.token.map(EventIntakeHandler.tokenDigest)
    }

    public func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in initialize(channel) }
            .bind(host: configuration.host, port: configuration.port).get()
        await onRunning(server.localAddress?.port ?? 0)
        try? await withTaskCancellationOrGracefulShutdownHandler {
            try await server.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            server.close(promise: nil)
        }
        for connection in connections.withLock({ Array($0.values) }) { connection.close(promise: nil) }
    }

    private func initialize(_ channel: any Channel) -> EventLoopFuture<Void> {
        let id = ObjectIdentifier(channel)
        connections.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in _ = connections.withLock { $0.removeValue(forKey: id) } }
        return channel.eventLoop.makeCompletedFuture {
            let operations = channel.pipeline.syncOperations
            if let tls { try operations.addHandler(NIOSSLServerHandler(context: tls)) }
            try operations.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
            try operations.addHandler(
                EventIntakeHandler(
                    pipeline: pipeline, tokenDigest: tokenDigest, limit: pipeline.configuration.maxEventBytes))
        }
    }
}

/// One connection's requests: `POST /` and `POST /events` take an event in, `GET /healthz` answers `ok`. The HTTP
/// pipeline handler before it holds the next request back until this one is answered.
final class EventIntakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// What is known of an answer before the request's body is read; written once the request ends.
    private struct Answer {
        var status: HTTPResponseStatus
        var body: [UInt8]
        var contentType = "application/json"
        var headers: [(String, String)] = []

        init(_ status: HTTPResponseStatus, json: JSONValue, headers: [(String, String)] = []) {
            self.status = status
            self.body = Array(IntakeAnswer.body(json))
            self.headers = headers
        }

        /// 202 with the event's id, the answer to every event taken in: written directly, without a `JSONValue`.
        init(acceptedID id: String) {
            var object = JSONObjectWriter(capacity: 64)
            object.add("id", id)
            self.status = .accepted
            self.body = object.finish() + [0x0A]
        }

        init(_ status: HTTPResponseStatus, message: String, headers: [(String, String)] = []) {
            self.init(status, json: ["message": .string(message)], headers: headers)
        }

        init(_ status: HTTPResponseStatus, text: String) {
            self.status = status
            self.body = Array(text.utf8)
            self.contentType = "text/plain; charset=utf-8"
        }
    }

    private enum Request {
        case idle
        /// An event's body, being read.
        case reading(HTTPRequestHead, ByteBuffer)
        /// Answered without its body, which is read and dropped.
        case answering(HTTPRequestHead, Answer)
    }

    private let pipeline: EventPipeline
    private let tokenDigest: [UInt8]?
    private let limit: Int
    private var request = Request.idle

    init(pipeline: EventPipeline, tokenDigest: [UInt8]?, limit: Int) {
        self.pipeline = pipeline
        self.tokenDigest = tokenDigest
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = begin(head, context: context)
        case .body(var part):
            guard case .reading(let head, var body) = request else { return }
            guard body.readableBytes + part.readableBytes <= limit else {
                request = .answering(head, tooLarge)
                return
            }
            request = .idle  // the buffer is uniquely held while it grows
            body.writeBuffer(&part)
            request = .reading(head, body)
        case .end:
            let ended = request
            request = .idle
            switch ended {
            case .idle:
                return
            case .answering(let head, let answer):
                write(answer, to: head, context: context)
            case .reading(let head, let body):
                take(body, answering: head, context: context)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private var tooLarge: Answer { Answer(.payloadTooLarge, message: "the event is larger than \(limit) bytes") }

    /// Decides what a request gets from its head alone, or starts reading its event.
    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> Request {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        switch path {
        case "/healthz":
            guard head.method == .GET else {
                return .answering(head, Answer(.methodNotAllowed, message: "use GET", headers: [("allow", "GET")]))
            }
            return .answering(head, Answer(.ok, text: "ok"))
        case "/", "/events":
            break
        default:
            return .answering(head, Answer(.notFound, message: "no such path; post events to / or /events"))
        }
        guard head.method == .POST else {
            return .answering(head, Answer(.methodNotAllowed, message: "post events", headers: [("allow", "POST")]))
        }
        if let tokenDigest,
            !Self.hasBearer(authorization: head.headers.first(name: "authorization"), digest: tokenDigest)
        {
            return .answering(head, Answer(.unauthorized, message: "a valid bearer token is required to post events"))
        }
        let declared = head.headers.first(name: "content-length").flatMap { Int($0) }
        let expectsContinue = head.headers.first(name: "expect")?.lowercased() == "100-continue"
        if let declared, declared > limit {
            if expectsContinue {
                // The client waits for a go-ahead before sending its body: refuse now and close, so it sends none.
                write(tooLarge, to: head, context: context, close: true)
                return .idle
            }
            return .answering(head, tooLarge)
        }
        if expectsContinue {
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        return .reading(head, context.channel.allocator.buffer(capacity: min(declared ?? 1024, limit)))
    }

    /// Hands the event to the pipeline and answers once it is durable (202 with its id) or refused.
    private func take(_ body: ByteBuffer, answering head: HTTPRequestHead, context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        pipeline.accept(Array(body.readableBytesView)) { result in
            loop.execute {
                let (handler, context) = bound.value
                switch result {
                case .success(let id):
                    handler.write(Answer(acceptedID: id), to: head, context: context)
                case .failure(let error):
                    let answer = Answer(
                        HTTPResponseStatus(statusCode: error.code.rawValue), message: error.message,
                        headers: error.isRetryable ? [("retry-after", "1")] : [])
                    handler.write(answer, to: head, context: context)
                }
            }
        }
    }

    private func write(
        _ answer: Answer, to head: HTTPRequestHead, context: ChannelHandlerContext, close: Bool = false
    ) {
        let keepAlive = head.isKeepAlive && !close
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: answer.contentType)
        headers.add(name: "content-length", value: String(answer.body.count))
        for (name, value) in answer.headers { headers.add(name: name, value: value) }
        if !keepAlive {
            headers.add(name: "connection", value: "close")
        } else if head.version == .http1_0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        let response = HTTPResponseHead(version: head.version, status: answer.status, headers: headers)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        let body = context.channel.allocator.buffer(bytes: answer.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// What a bearer token is compared by: its SHA-256, so that the comparison takes as long whatever its length.
    static func tokenDigest(_ token: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(token.utf8)))
    }

    /// Whether an `Authorization` header value is `Bearer <token>` for the token of `digest`, in constant time.
    static func hasBearer(authorization header: String?, digest: [UInt8]) -> Bool {
        guard let header, header.hasPrefix("Bearer ") else { return false }
        let given = tokenDigest(String(header.dropFirst(7)))
        var difference: UInt8 = 0
        for (left, right) in zip(given, digest) { difference |= left ^ right }
        return difference == 0
    }
}
