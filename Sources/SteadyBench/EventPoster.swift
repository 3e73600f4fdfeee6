import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The load generator of `steady-bench events`: keep-alive connections, each with one POST in flight, on one event
/// loop, through SwiftNIO's HTTP/1 codec. It shares the machine's two cores with what it measures, so it must cost
/// little: AsyncHTTPClient spent more CPU per request than the controller's whole intake, and the figures measured
/// the client. This is the part of wrk the benchmark needs, not a client the product uses (its deliveries go through
/// AsyncHTTPClient).
final class EventPoster: Sendable {
    /// What one run posts: `count` events numbered from `firstSeq`, as fast as answers come or at `rate` per second.
    struct Load: Sendable {
        var port: Int
        var connections: Int
        var count: Int
        var firstSeq: Int
        var routes: Int
        /// Events per second, or nil for as fast as the answers come.
        var rate: Int?
    }

    /// Post times by sequence number (ns since the benchmark's origin), of events answered 202.
    let sent = Mutex<[Int: UInt64]>([:])
    /// Nanoseconds from posting to the 202 answer, of every event answered 202.
    let answerTimes = Mutex<[UInt64]>([])
    /// Posts answered with something other than 202 or 429, or lost with their connection.
    let failed = Atomic<Int>(0)
    private let next = Atomic<Int>(0)
    private let open = Atomic<Int>(0)
    let load: Load
    let origin: ContinuousClock.Instant
    private let start: NIODeadline
    /// `start` in nanoseconds since `origin`.
    private let startSinceOrigin: UInt64
    private let done: EventLoopPromise<Void>

    private init(load: Load, origin: ContinuousClock.Instant, loop: any EventLoop) {
        self.load = load
        self.origin = origin
        self.start = .now()
        self.startSinceOrigin = (ContinuousClock.now - origin).nanoseconds
        self.done = loop.makePromise()
        self.open.store(load.connections, ordering: .relaxed)
    }

    /// Posts `load` on `loop` and returns once every event is answered (or failed).
    static func run(_ load: Load, origin: ContinuousClock.Instant, on loop: any EventLoop) async -> EventPoster {
        let poster = EventPoster(load: load, origin: origin, loop: loop)
        let bootstrap = ClientBootstrap(group: loop).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(Connection(poster: poster))
            }
        }
        for _ in 0..<load.connections {
            bootstrap.connect(host: "127.0.0.1", port: load.port).whenFailure { _ in poster.connectionEnded() }
        }
        try? await poster.done.futureResult.get()
        return poster
    }

    /// The index of the next event to post, or nil when all are taken.
    fileprivate func take() -> Int? {
        let index = next.add(1, ordering: .relaxed).oldValue
        return index < load.count ? index : nil
    }

    /// When event `index` is due, for a paced load: its deadline, and the same time in nanoseconds since `origin`.
    fileprivate func due(_ index: Int) -> (deadline: NIODeadline, sinceOrigin: UInt64)? {
        guard let rate = load.rate else { return nil }
        let offset = Int64(index) * 1_000_000_000 / Int64(max(rate, 1))
        return (start + .nanoseconds(offset), startSinceOrigin + UInt64(offset))
    }

    fileprivate func nanosecondsSinceOrigin() -> UInt64 { (ContinuousClock.now - origin).nanoseconds }

    fileprivate func connectionEnded() {
        if open.subtract(1, ordering: .relaxed).newValue == 0 { done.succeed() }
    }

    /// One connection: posts the next event once the last one is answered, again after a 429.
    private final class Connection: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart

        let poster: EventPoster
        /// The event in flight: its sequence number and when it was first posted.
        var inFlight: (seq: Int, postedAt: UInt64)?
        var status = 0
        var ended = false

        init(poster: EventPoster) { self.poster = poster }

        func channelActive(context: ChannelHandlerContext) {
            postNext(context: context)
        }

        private func postNext(context: ChannelHandlerContext) {
            guard let index = poster.take() else {
                end(context: context)
                return
            }
            let seq = poster.load.firstSeq + index
            if let due = poster.due(index) {
                // Latency counts from when the event was due, not from when a free connection posted it: a pipeline
                // that falls behind shows as latency (no coordinated omission).
                guard due.deadline > .now() else {
                    post(seq, postedAt: due.sinceOrigin, context: context)
                    return
                }
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(deadline: due.deadline) {
                    let (connection, context) = loopBound.value
                    connection.post(seq, postedAt: due.sinceOrigin, context: context)
                }
            } else {
                post(seq, postedAt: poster.nanosecondsSinceOrigin(), context: context)
            }
        }

        private func post(_ seq: Int, postedAt: UInt64, context: ChannelHandlerContext) {
            inFlight = (seq, postedAt)
            let body = ByteBuffer(string: #"{"route":"r\#(abs(seq) % max(poster.load.routes, 1))","seq":\#(seq)}"#)
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/")
            head.headers.add(name: "Host", value: "127.0.0.1")
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: "\(body.readableBytes)")
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = Int(head.status.code)
            case .body:
                break
            case .end:
                guard let (seq, postedAt) = inFlight else { return }
                inFlight = nil
                switch status {
                case 202:
                    poster.sent.withLock { $0[seq] = postedAt }
                    let answered = poster.nanosecondsSinceOrigin()
                    poster.answerTimes.withLock { $0.append(answered > postedAt ? answered - postedAt : 0) }
                    postNext(context: context)
                case 429:
                    // Posted again, its latency counting from the first try.
                    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    context.eventLoop.scheduleTask(in: .milliseconds(5)) {
                        let (connection, context) = loopBound.value
                        connection.post(seq, postedAt: postedAt, context: context)
                    }
                default:
                    poster.failed.add(1, ordering: .relaxed)
                    postNext(context: context)
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if inFlight != nil { poster.failed.add(1, ordering: .relaxed) }
            inFlight = nil
            end(context: context)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        private func end(context: ChannelHandlerContext) {
            guard !ended else { return }
            ended = true
            poster.connectionEnded()
            context.close(promise: nil)
        }
    }
}
