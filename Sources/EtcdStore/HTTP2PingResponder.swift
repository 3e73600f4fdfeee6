import NIOCore

/// Acknowledges the HTTP/2 PING frames etcd sends, below the HTTP/2 handler, so that they do not count against its
/// flood guard.
///
/// etcd's gRPC server (grpc-go) estimates bandwidth-delay by sending a PING whenever data arrives and none is
/// outstanding: under a steady stream of requests that is dozens a second. SwiftNIO's HTTP/2 handler counts every
/// PING it receives as a control frame and, past 200 in 30 s (a guard against untrusted peers that
/// grpc-swift-nio-transport does not let a client raise), closes the connection with ENHANCE_YOUR_CALM, failing
/// every request in flight. etcd is the store the controller was configured to trust, so its PINGs are answered
/// here (an ACK with the same 8 bytes, as HTTP/2 requires) and never reach the handler; every other byte passes
/// through unchanged, in order.
///
/// It reads the frame layout only: a 9-byte header (24-bit length, type, flags, stream), then the payload.
final class HTTP2PingResponder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let frameHeaderLength = 9
    private static let pingType: UInt8 = 6
    private static let ackFlag: UInt8 = 0x1
    private static let pingPayloadLength = 8

    /// The start of a frame header, or of a PING, that has not fully arrived yet.
    private var heldBack: ByteBuffer?
    /// Payload bytes of the current (non-PING) frame still to pass through.
    private var payloadLeft = 0
    /// How many PINGs were answered here; for tests.
    private(set) var answered = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        if var held = heldBack {
            held.writeBuffer(&input)
            input = held
            heldBack = nil
        }
        let whole = input
        // What passes is copied out only when something is taken out of this read; else `whole` goes on as it is.
        var passed: ByteBuffer?
        var passFrom = input.readerIndex
        var acknowledged = false
        func keep(upTo end: Int) {
            guard end > passFrom, let bytes = whole.getSlice(at: passFrom, length: end - passFrom) else { return }
            passed = passed ?? context.channel.allocator.buffer(capacity: whole.readableBytes)
            passed?.writeImmutableBuffer(bytes)
        }
        while input.readableBytes > 0 {
            if payloadLeft > 0 {
                let count = min(payloadLeft, input.readableBytes)
                input.moveReaderIndex(forwardBy: count)
                payloadLeft -= count
                continue
            }
            guard let header = Self.header(of: input),
                !header.isPing || input.readableBytes >= Self.frameHeaderLength + Self.pingPayloadLength
            else {
                keep(upTo: input.readerIndex)
                heldBack = input
                passFrom = input.writerIndex
                break
            }
            guard header.isPing else {
                input.moveReaderIndex(forwardBy: Self.frameHeaderLength)
                payloadLeft = header.length
                continue
            }
            keep(upTo: input.readerIndex)
            var ping = input.readSlice(length: Self.frameHeaderLength + Self.pingPayloadLength) ?? ByteBuffer()
            passFrom = input.readerIndex
            ping.setInteger(Self.ackFlag, at: ping.readerIndex + 4)
            context.write(wrapOutboundOut(ping), promise: nil)
            answered += 1
            acknowledged = true
        }
        guard acknowledged || heldBack != nil else {
            if whole.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(whole)) }
            return
        }
        if acknowledged { context.flush() }
        keep(upTo: input.writerIndex)
        if let passed, passed.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(passed)) }
    }

    private struct FrameHeader {
        var length: Int
        var isPing: Bool
    }

    /// The header at the start of `buffer`, nil until all of it has arrived. A PING that is an ACK, or has a payload
    /// other than 8 bytes (a protocol error the HTTP/2 handler reports), is passed through like any other frame.
    private static func header(of buffer: ByteBuffer) -> FrameHeader? {
        guard buffer.readableBytes >= frameHeaderLength,
            let high = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let low = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self),
            let type = buffer.getInteger(at: buffer.readerIndex + 3, as: UInt8.self),
            let flags = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self)
        else { return nil }
        let length = Int(high) << 16 | Int(low)
        return FrameHeader(
            length: length, isPing: type == pingType && flags & ackFlag == 0 && length == pingPayloadLength)
    }
}
