import NIOCore
import NIOEmbedded
import Resources
import Testing

@testable import Reconciler

/// An agent's connection holds at most the buffer limit of unsent messages; a stuck agent is found out.
@Suite(.timeLimit(.minutes(5))) struct ChannelSliceConnectionTests {
    /// Holds every write without completing it, as a socket whose peer stopped reading does.
    final class StuckSocket: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var held: [(ByteBuffer, EventLoopPromise<Void>?)] = []

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            held.append((unwrapOutboundIn(data), promise))
        }

        func flush(context: ChannelHandlerContext) {}

        func drain() {
            let writes = held
            held = []
            for (_, promise) in writes { promise?.succeed(()) }
        }
    }

    let keepalive = SliceMessage(type: .keepalive, revision: 3, digest: "d")

    @Test func aStuckAgentOverflowsAtTheLimitAndRecoversWhenItReads() throws {
        let channel = EmbeddedChannel()
        let socket = StuckSocket()
        try channel.pipeline.syncOperations.addHandler(socket)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let connection = ChannelSliceConnection(channel: channel, limit: 3)

        for _ in 0..<3 { #expect(connection.send(keepalive) == .queued) }
        channel.embeddedEventLoop.run()
        #expect(socket.held.count == 3)
        #expect(connection.send(keepalive) == .overflowed)

        // Each held write is a JSON line the agent can read.
        let line = try #require(socket.held.first?.0)
        #expect(String(buffer: line).hasSuffix("\n"))
        #expect(String(buffer: line).contains("\"keepalive\""))

        socket.drain()
        #expect(connection.send(keepalive) == .queued)
    }

    @Test func aClosedConnectionSaysSo() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let connection = ChannelSliceConnection(channel: channel, limit: 3)
        connection.close()
        channel.embeddedEventLoop.run()
        #expect(connection.send(keepalive) == .closed)
    }
}
