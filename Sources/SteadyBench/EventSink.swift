import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Where `steady-bench events` sees deliveries arrive, by the sequence number each event carries: an HTTP receiver
/// (SwiftNIO's HTTP/1 server pipeline answering 200 to every POST, on an event loop of its own, as cheap per
/// request as the load generator), or the NDJSON file of a `file` action, read as it grows.
final class EventSink: Sendable {
    /// Receive times by sequence number, in nanoseconds of the continuous clock since `origin`.
    let received = Mutex<[Int: UInt64]>([:])
    let origin: ContinuousClock.Instant
    private let isFollowing = Atomic<Bool>(false)

    init(origin: ContinuousClock.Instant) { self.origin = origin }

    var count: Int { received.withLock { $0.count } }

    /// Notes the events in `bytes` (a delivered message or lines of the file) as received now: the number after
    /// each `"seq":`.
    func record(_ bytes: some Collection<UInt8>) {
        let now = (ContinuousClock.now - origin).nanoseconds
        let key = Array(#""seq":"#.utf8)
        var seqs: [Int] = []
        var index = bytes.startIndex
        var matched = 0
        while index != bytes.endIndex {
            let byte = bytes[index]
            index = bytes.index(after: index)
            guard byte == key[matched] else {
                matched = byte == key[0] ? 1 : 0
                continue
            }
            matched += 1
            guard matched == key.count else { continue }
            matched = 0
            var value = 0
            var sign = 1
            while index != bytes.endIndex {
                let digit = bytes[index]
                if digit == UInt8(ascii: "-") {
                    sign = -1
                } else if digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") {
                    value = value * 10 + Int(digit - UInt8(ascii: "0"))
                } else {
                    break
                }
                index = bytes.index(after: index)
            }
            seqs.append(sign * value)
        }
        guard !seqs.isEmpty else { return }
        received.withLock { received in
            for seq in seqs where received[seq] == nil { received[seq] = now }
        }
    }

    /// Serves HTTP on a free loopback port of `group` and returns the port.
    func serve(on group: any EventLoopGroup) async throws -> Int {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Receiver(sink: self))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return channel.localAddress?.port ?? 0
    }

    /// Reads `path` as it grows, every millisecond, on a thread of its own until ``stopFollowing()``: the file
    /// action's deliveries.
    func follow(_ path: String) {
        isFollowing.store(true, ordering: .relaxed)
        Thread { self.read(path) }.start()
    }

    func stopFollowing() {
        isFollowing.store(false, ordering: .relaxed)
    }

    private func read(_ path: String) {
        var offset: UInt64 = 0
        var partial: [UInt8] = []
        while isFollowing.load(ordering: .relaxed) {
            if let handle = FileHandle(forReadingAtPath: path) {
                try? handle.seek(toOffset: offset)
                if let data = try? handle.readToEnd(), !data.isEmpty {
                    offset += UInt64(data.count)
                    partial += data
                    if let end = partial.lastIndex(of: 0x0A) {
                        record(partial[...end])
                        partial.removeSubrange(...end)
                    }
                }
                try? handle.close()
            }
            usleep(1_000)
        }
    }

    private final class Receiver: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let sink: EventSink
        var body: ByteBuffer?
        var version = HTTPVersion.http1_1

        init(sink: EventSink) { self.sink = sink }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                version = head.version
                body = context.channel.allocator.buffer(capacity: 256)
            case .body(var part):
                body?.writeBuffer(&part)
            case .end:
                if let body { sink.record(body.readableBytesView) }
                body = nil
                let head = HTTPResponseHead(version: version, status: .ok, headers: ["content-length": "0"])
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
