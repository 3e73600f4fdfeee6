import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Where `steady-bench events` sees deliveries arrive, by the sequence number each event carries: an HTTP receiver
/// (SwiftNIO's HTTP/1 server pipeline answering 200 to every POST, on an event loop of its own, as cheap per
/// request as the load generator), or the NDJSON file of a `file` action, read each time it is written.
final class EventSink: Sendable {
    /// Receive times by sequence number, in nanoseconds of the continuous clock since `origin`.
    let received = Mutex<[Int: UInt64]>([:])
    let origin: ContinuousClock.Instant

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
        let count = received.withLock { received in
            for seq in seqs where received[seq] == nil { received[seq] = now }
            return received.count
        }
        let reached = waiters.withLock { waiters in
            let reached = waiters.list.filter { $0.target <= count }
            waiters.list.removeAll { $0.target <= count }
            return reached
        }
        for waiter in reached { waiter.continuation.resume() }
    }

    private struct Waiter {
        let id: Int
        let target: Int
        let continuation: CheckedContinuation<Void, Never>
    }

    private let waiters = Mutex<(nextID: Int, list: [Waiter])>((0, []))

    /// Returns once at least `target` events are received, or once `timeout` has passed.
    func wait(forCount target: Int, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait(forCount: target) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns once at least `target` events are received, or when the task is cancelled.
    private func wait(forCount target: Int) async {
        let id = waiters.withLock { waiters in
            waiters.nextID += 1
            return waiters.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let isDone = waiters.withLock { waiters in
                    // Checked under the waiters' lock: `record` counts first, then looks for waiters.
                    if Task.isCancelled || count >= target { return true }
                    waiters.list.append(Waiter(id: id, target: target, continuation: continuation))
                    return false
                }
                if isDone { continuation.resume() }
            }
        } onCancel: {
            let waiter = waiters.withLock { waiters in
                waiters.list.firstIndex { $0.id == id }.map { waiters.list.remove(at: $0) }
            }
            waiter?.continuation.resume()
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

    /// Reads `path` as it grows, on a thread of its own woken by each write to it (inotify), until
    /// ``stopFollowing()``: the file action's deliveries. The file must exist.
    func follow(_ path: String) throws {
        let file = open(path, O_RDONLY | O_CLOEXEC)
        let changes = inotify_init1(Int32(IN_CLOEXEC))
        guard file >= 0, changes >= 0, inotify_add_watch(changes, path, UInt32(IN_MODIFY)) >= 0 else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        Thread { self.read(file, woken: changes) }.start()
    }

    /// Ends ``follow(_:)``'s thread once it has read what is written.
    func stopFollowing() {
        var byte: UInt8 = 1
        _ = write(stop.write, &byte, 1)
    }

    /// A pipe whose write end ends the follower.
    private let stop: (read: Int32, write: Int32) = {
        var ends: [Int32] = [-1, -1]
        _ = pipe(&ends)
        return (ends[0], ends[1])
    }()

    deinit {
        close(stop.read)
        close(stop.write)
    }

    private func read(_ file: Int32, woken changes: Int32) {
        defer {
            close(file)
            close(changes)
        }
        var partial: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var waits = [
            pollfd(fd: changes, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stop.read, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            while case let count = Foundation.read(file, &buffer, buffer.count), count > 0 {
                partial += buffer[..<count]
            }
            if let end = partial.lastIndex(of: 0x0A) {
                record(partial[...end])
                partial.removeSubrange(...end)
            }
            if poll(&waits, 2, -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if waits[1].revents != 0 { return }
            // The events only say that the file changed: drained, and the file is read to its end again.
            _ = Foundation.read(changes, &buffer, buffer.count)
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
