import NIOCore
import NIOEmbedded
import Testing

@testable import EtcdStore

/// The responder answers every PING etcd sends and passes every other byte through unchanged, however the bytes
/// are split across reads.
@Suite(.timeLimit(.minutes(1))) struct HTTP2PingResponderTests {
    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        let header: [UInt8] = [
            UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags,
            UInt8(stream >> 24 & 0xff), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff),
        ]
        return header + payload
    }

    static let settings = frame(type: 4, payload: [0, 3, 0, 0, 0, 100])
    static let ping = frame(type: 6, payload: [1, 2, 3, 4, 5, 6, 7, 8])
    static let pingAck = frame(type: 6, flags: 1, payload: [9, 9, 9, 9, 9, 9, 9, 9])
    static let data = frame(type: 0, flags: 1, stream: 1, payload: Array(repeating: 6, count: 40))

    @Test(arguments: [1, 2, 5, 9, 13, 17, 64, 1_000])
    func pingsAreAnsweredAndEverythingElsePassesThroughInOrder(chunk: Int) throws {
        let channel = EmbeddedChannel(handler: HTTP2PingResponder())
        // A PING whose payload looks like a frame header, to show the payload is not parsed as one.
        let tricky = Self.frame(type: 6, payload: [0, 0, 0, 6, 0, 0, 0, 0])
        let stream = Self.settings + Self.ping + Self.data + Self.pingAck + tricky + Self.data + Self.ping
        var offset = 0
        while offset < stream.count {
            let end = min(offset + chunk, stream.count)
            try channel.writeInbound(ByteBuffer(bytes: stream[offset..<end]))
            offset = end
        }
        var passed: [UInt8] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { passed += Array(buffer.readableBytesView) }
        #expect(passed == Self.settings + Self.data + Self.pingAck + Self.data)
        var written: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written += Array(buffer.readableBytesView) }
        let ack = { (ping: [UInt8]) in Array(ping[0..<4]) + [1] + Array(ping[5...]) }
        #expect(written == ack(Self.ping) + ack(tricky) + ack(Self.ping))
        #expect(try channel.finish().isClean)
    }

    @Test func aPingWithAWrongLengthIsLeftForTheHTTP2HandlerToRefuse() throws {
        let channel = EmbeddedChannel(handler: HTTP2PingResponder())
        let bad = Self.frame(type: 6, payload: [1, 2, 3])
        try channel.writeInbound(ByteBuffer(bytes: bad))
        let passed = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(Array(passed.readableBytesView) == bad)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
    }
}
