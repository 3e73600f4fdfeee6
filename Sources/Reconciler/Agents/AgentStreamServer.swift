import Foundation
import Logging
import NIOCore
import Resources

/// Serves agent streams: one TLS connection per agent carrying newline-delimited JSON both ways (see
/// ``AgentProtocol``). The agent's hello is authenticated like an API request; after it, slice messages from the
/// ``AgentGateway`` go down and the agent's reports come up.
public struct AgentStreamServer: Sendable {
    typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    let gateway: AgentGateway
    let authenticator: any Authenticating
    /// How long a new connection may take to send its hello.
    var helloTimeout: TimeAmount = .seconds(10)

    /// Adds the line framing and the async wrapper to a connection that negotiated the agent protocol.
    static func setup(channel: any Channel) throws -> Connection {
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(LineDecoder(maximumLength: AgentProtocol.maximumAgentLineLength)))
        return try Connection(wrappingChannelSynchronously: channel)
    }

    func serve(_ connection: Connection, logger: Logger) async {
        await Self.pump(
            connection, helloTimeout: helloTimeout, logger: logger,
            open: { hello -> Result<AsyncStream<SliceMessage>, AgentStreamRefusal> in
                switch await authenticate(hello) {
                case .failure(let refusal): return .failure(refusal)
                case .success(let runner):
                    return .success(
                        await gateway.connect(runner: runner, revision: hello.revision, digest: hello.digest))
                }
            },
            encode: { try Self.line($0) },
            receive: { hello, report in await gateway.report(runner: hello.runner, report) })
    }

    /// Runs one agent stream: reads the hello, asks `open` for the messages to send, then sends them (each made a
    /// line by `encode`) while passing
    /// each report that arrives to `receive`. The connection closes when either side ends, when the hello does not
    /// come within `helloTimeout`, or after a refusal or a malformed line (answered with an ``AgentStreamRefusal``).
    static func pump<Messages: AsyncSequence & Sendable>(
        _ connection: Connection, helloTimeout: TimeAmount, logger: Logger,
        open: (AgentHello) async -> Result<Messages, AgentStreamRefusal>,
        encode: @escaping @Sendable (Messages.Element) throws -> ByteBuffer,
        receive: @escaping @Sendable (AgentHello, AgentReport) async -> Void
    ) async {
        let channel = connection.channel
        let helloDeadline = channel.eventLoop.scheduleTask(in: helloTimeout) { channel.close(promise: nil) }
        defer { helloDeadline.cancel() }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var lines = inbound.makeAsyncIterator()
                guard let first = try await lines.next() else { return }
                helloDeadline.cancel()
                guard let hello: AgentHello = decode(first) else {
                    try await outbound.write(
                        line(AgentStreamRefusal(refused: 400, message: "the first line must be an agent hello")))
                    return
                }
                let toSend: Messages
                switch await open(hello) {
                case .failure(let refusal):
                    try await outbound.write(line(refusal))
                    return
                case .success(let opened):
                    toSend = opened
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await message in toSend { try await outbound.write(try encode(message)) }
                        // The controller ended the stream (shutdown, or an agent too far behind): hang up.
                        channel.close(promise: nil)
                    }
                    defer { group.cancelAll() }
                    while let line = try await lines.next() {
                        if line.readableBytes == 0 { continue }
                        guard let report: AgentReport = decode(line) else {
                            try await outbound.write(
                                Self.line(AgentStreamRefusal(refused: 400, message: "a line is not an agent report")))
                            return
                        }
                        await receive(hello, report)
                    }
                }
            }
        } catch {
            logger.debug("agent stream ended", metadata: ["steady.error": "\(error)"])
        }
    }

    /// The runner a hello may act as, or why not.
    private func authenticate(_ hello: AgentHello) async -> Result<String, AgentStreamRefusal> {
        switch await authenticator.identity(forToken: hello.credential) {
        case nil:
            return .failure(AgentStreamRefusal(refused: 401, message: "Unauthorized: unknown or revoked credential"))
        case .runner(let name) where name == hello.runner:
            return .success(name)
        default:
            return .failure(
                AgentStreamRefusal(
                    refused: 403,
                    message: "an agent may only use its own runner's stream (runner \"\(hello.runner)\")"))
        }
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
