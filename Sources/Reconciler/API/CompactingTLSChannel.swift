import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL

/// The server's TLS channel (HTTP/2 or HTTP/1.1 by ALPN) with a ``TLSReadCompactor`` behind the TLS handler, so
/// that an idle connection holds one TLS read buffer rather than two, and ``SparseBufferAllocator`` as its
/// allocator, so that the pages of that buffer a connection never writes cost no memory.
struct CompactingTLSChannel: ServerChildChannel {
    let upgrade: HTTP2UpgradeChannel

    static func builder(tlsConfiguration: TLSConfiguration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            CompactingTLSChannel(upgrade: try HTTP2UpgradeChannel(tlsConfiguration: tlsConfiguration, responder: responder))
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP2UpgradeChannel.Value> {
        // The allocator must be in place before the TLS handler allocates its buffers.
        do {
            try channel.syncOptions?.setOption(.allocator, value: SparseBufferAllocator.allocator)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        // The upgrade channel adds its TLS handler synchronously, first; the compactor goes right after it.
        let value = upgrade.setup(channel: channel, logger: logger)
        do {
            let tls = try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
            try channel.pipeline.syncOperations.addHandler(TLSReadCompactor(), position: .after(tls))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return value
    }

    func handle(value: HTTP2UpgradeChannel.Value, logger: Logger) async {
        await upgrade.handle(value: value, logger: logger)
    }
}

/// Copies small reads out of the TLS handler's 32 KiB plaintext buffer.
///
/// NIOSSL passes on a slice of its read buffer; a frame parser that keeps the slice (NIOHTTP2's does, between
/// frames) makes NIOSSL copy the whole buffer on its next read, so every idle connection would hold two. Agent
/// traffic is small messages, so the copy costs little and the memory per connection drops by 32 KiB.
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
