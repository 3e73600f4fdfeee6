import Foundation
import Logging
import NIOCore
import Resources

/// Serves agent streams: one TLS connection per agent carrying newline-delimited JSON both ways (see
/// ``AgentProtocol``). The hello is authenticated like an API request; after it the ``AgentGateway`` writes slice
/// messages straight to the channel, and the agent's reports are decoded on the event loop and handed to the
/// gateway. A served connection holds no task of its own.
public struct AgentStreamServer: Sendable {
    /// A connection that negotiated the agent protocol: its channel, its line handler, and its first line.
    struct Connection: Sendable {
        let channel: any Channel
        let handler: NIOLoopBound<AgentStreamHandler>
        let hello: EventLoopFuture<ByteBuffer>
    }

    let gateway: AgentGateway
    let authenticator: any Authenticating
    /// Where the output of scheduled runs goes; nil drops it.
    var scheduledOutput: ScheduledRunOutput?
    /// How long a new connection may take to send its hello.
    var helloTimeout: TimeAmount = .seconds(10)

    /// Adds the line framing and the stream handler to a connection that negotiated the agent protocol.
    static func setup(channel: any Channel) throws -> Connection {
        let handler = AgentStreamHandler(eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(LineDecoder(maximumLength: AgentProtocol.maximumAgentLineLength)))
        try channel.pipeline.syncOperations.addHandler(handler)
        return Connection(
            channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
            hello: handler.hello.futureResult)
    }

    func serve(_ connection: Connection, logger: Logger) async {
        let gateway = gateway
        let scheduledOutput = scheduledOutput
        // Set by `authorize`, read by `start`: one connection's hello, checked once.
        var credentialExpiry: Date?
        await Self.accept(
            connection, helloTimeout: helloTimeout, logger: logger,
            authorize: { hello in
                switch await authenticator.streamAccess(forToken: hello.credential, runner: hello.runner) {
                case .granted(_, let expires):
                    credentialExpiry = expires
                    return nil
                case .refused(let refusal):
                    return refusal
                }
            },
            receive: { hello, report in gateway.receive(runner: hello.runner, report: report) },
            receiveRun: { hello, message in
                // A runner's own scheduled runs are not RemoteRuns: the dispatcher never hears of them.
                guard ScheduledRunOutput.isScheduled(message) else {
                    gateway.receive(runner: hello.runner, run: message)
                    return
                }
                scheduledOutput?.receive(runner: hello.runner, message)
            },
            start: { hello in
                await gateway.attach(
                    runner: hello.runner, revision: hello.revision, digest: hello.digest,
                    connection: ChannelSliceConnection(
                        channel: connection.channel, limit: gateway.configuration.bufferLimit,
                        metrics: gateway.metrics),
                    credentialExpiry: credentialExpiry)
            })
    }

    /// Takes an agent stream's hello (closing the connection when none comes within `helloTimeout`), and either
    /// refuses it with the ``AgentStreamRefusal`` `authorize` returns, or passes every report that arrives from then
    /// on to `receive` and every run message to `receiveRun` (on the event loop) and calls `start`, which begins
    /// sending.
    static func accept(
        _ connection: Connection, helloTimeout: TimeAmount, logger: Logger,
        authorize: (AgentHello) async -> AgentStreamRefusal?,
        receive: @escaping @Sendable (AgentHello, AgentReport) -> Void,
        receiveRun: @escaping @Sendable (AgentHello, RunAgentMessage) -> Void = { _, _ in },
        start: (AgentHello) async -> Void
    ) async {
        let channel = connection.channel
        let helloDeadline = channel.eventLoop.scheduleTask(in: helloTimeout) { channel.close(promise: nil) }
        defer { helloDeadline.cancel() }
        guard let first = try? await connection.hello.get() else { return }
        helloDeadline.cancel()
        guard let hello: AgentHello = decode(first) else {
            refuse(channel, AgentStreamRefusal(refused: 400, message: "the first line must be an agent hello"))
            return
        }
        if let refusal = await authorize(hello) {
            logger.notice(
                "agent stream refused",
                metadata: [
                    "steady.runner": "\(hello.runner)", "steady.status": "\(refusal.refused)",
                    "steady.reason": "\(refusal.message)",
                ])
            refuse(channel, refusal)
            return
        }
        // Reports are taken before the first message goes out, so that none is missed.
        let handler = connection.handler
        try? await channel.eventLoop.submit {
            handler.value.serve(reports: { receive(hello, $0) }, runs: { receiveRun(hello, $0) })
        }.get()
        await start(hello)
    }

    /// Sends a refusal and hangs up.
    static func refuse(_ channel: any Channel, _ refusal: AgentStreamRefusal) {
        guard let line = try? line(refusal) else {
            channel.close(promise: nil)
            return
        }
        channel.writeAndFlush(line).whenComplete { _ in channel.close(promise: nil) }
    }

    static func decode<T: Decodable>(_ line: ByteBuffer) -> T? {
        try? StrictDecoder().decode(T.self, from: try JSONValue.parse(Data(buffer: line)))
    }

    static func line(_ value: some Encodable) throws -> ByteBuffer {
        var data = try JSONValue(encoding: value).jsonData()
        data.append(0x0A)
        return ByteBuffer(bytes: data)
    }
}

/// The agent stream's last handler: completes `hello` with the first line, then decodes reports and run messages
/// for whoever serves the stream. A line that is neither, or is too long, is answered with a refusal and ends the
/// stream.
final class AgentStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let hello: EventLoopPromise<ByteBuffer>
    private var hasHello = false
    private var receive: ((AgentReport) -> Void)?
    private var receiveRun: ((RunAgentMessage) -> Void)?
    /// Lines that came while the hello was being checked; they are read once the stream is served.
    private var early: [ByteBuffer] = []
    private var context: ChannelHandlerContext?

    init(eventLoop: any EventLoop) {
        hello = eventLoop.makePromise()
    }

    /// From now on, reports go to `reports` and run messages to `runs`, starting with any that came while the hello
    /// was being checked.
    func serve(reports: @escaping (AgentReport) -> Void, runs: @escaping (RunAgentMessage) -> Void) {
        self.receive = reports
        self.receiveRun = runs
        guard let context else { return }
        let lines = early
        early = []
        for line in lines { read(line, context: context) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        guard hasHello else {
            hasHello = true
            hello.succeed(line)
            return
        }
        guard receive != nil else {
            // Bounded: an agent has no reason to send more than a report or two before it is answered.
            if early.count < 16 { early.append(line) }
            return
        }
        read(line, context: context)
    }

    private func read(_ line: ByteBuffer, context: ChannelHandlerContext) {
        guard line.readableBytes > 0, let receive else { return }
        do {
            // Reports, the common line, are parsed once: only a line that may be a run message is tried as one.
            if RunProtocol.mayBeRunMessage(line.readableBytesView),
                let run = try RunAgentMessage.decode(line: line.readableBytesView)
            {
                receiveRun?(run)
                return
            }
        } catch {
            // A malformed run message (oversized chunk, bad phase) ends this agent's stream, and nothing else.
            AgentStreamServer.refuse(context.channel, AgentStreamRefusal(refused: 400, message: "\(error)"))
            return
        }
        guard let report: AgentReport = AgentStreamServer.decode(line) else {
            AgentStreamServer.refuse(
                context.channel, AgentStreamRefusal(refused: 400, message: "a line is not an agent report"))
            return
        }
        receive(report)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tooLong = error as? LineDecoder.LineTooLong {
            AgentStreamServer.refuse(context.channel, AgentStreamRefusal(refused: 400, message: "\(tooLong)"))
        } else {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failHelloIfAwaited()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        failHelloIfAwaited()
    }

    /// The connection ended before its hello: nobody should wait for it any longer.
    private func failHelloIfAwaited() {
        guard !hasHello else { return }
        hasHello = true
        hello.fail(ChannelError.ioOnClosedChannel)
    }
}

/// Splits a byte stream into lines (without the newline), refusing a line longer than `maximumLength`.
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maximumLength: Int

    struct LineTooLong: Error, CustomStringConvertible {
        let maximumLength: Int
        var description: String { "a line is longer than \(maximumLength) bytes" }
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > maximumLength { throw LineTooLong(maximumLength: maximumLength) }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        if length > maximumLength { throw LineTooLong(maximumLength: maximumLength) }
        // A copy, so that the decoder's buffer is not kept alive by a line a reader holds on to.
        let line = ByteBuffer(bytes: buffer.readableBytesView.prefix(length))
        buffer.moveReaderIndex(forwardBy: length + 1)
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
