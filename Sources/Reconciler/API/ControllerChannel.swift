import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Resources

/// The controller's TLS port: HTTP/2 or HTTP/1.1 for the API, and the agent stream, chosen by ALPN.
///
/// kubectl and the CLI offer `h2` and `http/1.1`; agents offer only ``AgentProtocol/streamProtocol`` and are handed
/// to `agentStreams` (an ``AgentStreamServer`` in the controller). Every connection gets ``SparseBufferAllocator`` as its allocator and a
/// ``TLSReadCompactor`` behind the TLS handler, which together keep an idle connection's TLS buffers small.
struct ControllerChannel: ServerChildChannel {
    enum Negotiated: Sendable {
        case http1(HTTP1Channel.Value)
        case http2(HTTP2Channel.Value)
        case agent(AgentStreamServer.Connection)
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    /// Serves one agent stream until it ends.
    typealias AgentStreamHandler = @Sendable (AgentStreamServer.Connection, Logger) async -> Void

    let sslContext: NIOSSLContext
    let http1: HTTP1Channel
    let http2: HTTP2Channel
    let agentStreams: AgentStreamHandler?

    static func builder(tlsConfiguration: TLSConfiguration, agentStreams: AgentStreamHandler?) throws
        -> HTTPServerBuilder
    {
        var tlsConfiguration = tlsConfiguration
        tlsConfiguration.applicationProtocols =
            ["h2", "http/1.1"] + (agentStreams == nil ? [] : [AgentProtocol.streamProtocol])
        let sslContext = try NIOSSLContext(configuration: tlsConfiguration)
        return HTTPServerBuilder { responder in
            ControllerChannel(
                sslContext: sslContext, http1: HTTP1Channel(responder: responder),
                http2: HTTP2Channel(responder: responder), agentStreams: agentStreams)
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // The allocator must be in place before the TLS handler allocates its buffers.
            try channel.syncOptions?.setOption(.allocator, value: SparseBufferAllocator.allocator)
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            try channel.pipeline.syncOperations.addHandler(TLSReadCompactor())
            let negotiation = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result, channel in
                switch result {
                case .negotiated("h2"):
                    return http2.setup(channel: channel, logger: logger).map { .http2($0) }
                case .negotiated(AgentProtocol.streamProtocol) where agentStreams != nil:
                    return channel.eventLoop.makeCompletedFuture {
                        .agent(try AgentStreamServer.setup(channel: channel))
                    }
                case .negotiated("http/1.1"), .fallback:
                    return http1.setup(channel: channel, logger: logger).map { .http1($0) }
                case .negotiated(let name):
                    return channel.close().flatMapThrowing { throw UnexpectedProtocol(name: name) }
                }
            }
            try channel.pipeline.syncOperations.addHandler(negotiation)
            return Value(negotiated: negotiation.protocolNegotiationResult, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        let negotiated: Negotiated
        do {
            negotiated = try await value.negotiated.get()
        } catch {
            logger.debug("TLS or protocol negotiation failed", metadata: ["steady.error": "\(error)"])
            return
        }
        switch negotiated {
        case .http1(let connection): await http1.handle(value: connection, logger: logger)
        case .http2(let connection): await http2.handle(value: connection, logger: logger)
        case .agent(let connection): await agentStreams?(connection, logger)
        }
    }

    struct UnexpectedProtocol: Error, CustomStringConvertible {
        let name: String
        var description: String { "the client negotiated an unknown protocol \"\(name)\"" }
    }
}

/// Copies small reads out of the TLS handler's 32 KiB plaintext buffer.
///
/// NIOSSL passes on a slice of its read buffer; a parser that keeps the slice (NIOHTTP2's frame parser does,
/// between frames, and so does a line decoder holding half a line) makes NIOSSL copy the whole buffer on its next
/// read, so every idle connection would hold two. Agent traffic is small messages, so the copy costs little.
final class TLSReadCompactor: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard buffer.capacity > 2 * buffer.readableBytes + 1024 else {
            context.fireChannelRead(data)
            return
        }
        var copy = context.channel.allocator.buffer(capacity: buffer.readableBytes)
        copy.writeImmutableBuffer(buffer)
        context.fireChannelRead(wrapInboundOut(copy))
    }
}
