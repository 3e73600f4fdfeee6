import NIOCore
import Resources
import Synchronization

/// Where the gateway sends a runner's slice messages: an agent's connection, or a stream (tests, in-process use).
public protocol SliceConnection: Sendable {
    /// Queues a message for the agent.
    func send(_ message: SliceMessage) -> SliceSendResult
    /// Queues a line of another protocol on the same stream (a run message), newline included.
    func send(line: [UInt8]) -> SliceSendResult
    /// Hangs up.
    func close()
    /// Sends `refusal` (why the stream ends), then hangs up.
    func close(refusing refusal: AgentStreamRefusal)
    /// Whether the agent is still there, as far as is known without sending.
    var isOpen: Bool { get }
}

extension SliceConnection {
    public func close(refusing refusal: AgentStreamRefusal) { close() }
    public var isOpen: Bool { true }
}

/// What became of a message handed to a ``SliceConnection``.
public enum SliceSendResult: Sendable, Equatable {
    case queued
    /// The agent fell more than the buffer limit behind; it should be disconnected and resync.
    case overflowed
    /// The agent went away.
    case closed
}

/// A slice connection read as an `AsyncStream` (buffering at most the gateway's limit).
struct StreamSliceConnection: SliceConnection {
    let continuation: AsyncStream<SliceMessage>.Continuation

    init(_ continuation: AsyncStream<SliceMessage>.Continuation) {
        self.continuation = continuation
    }

    func send(_ message: SliceMessage) -> SliceSendResult {
        switch continuation.yield(message) {
        case .enqueued: return .queued
        case .dropped: return .overflowed
        case .terminated: return .closed
        @unknown default: return .closed
        }
    }

    /// In-process streams carry slices only: run messages are not for them.
    func send(line: [UInt8]) -> SliceSendResult { .queued }

    func close() { continuation.finish() }
}

/// An agent's stream connection: messages are written to the channel as JSON lines, at most `limit` unsent.
///
/// Writing straight to the channel, rather than through a task per connection, is what keeps a connected runner
/// cheap: the connection holds no task, no async stream and no buffer of its own.
final class ChannelSliceConnection: SliceConnection {
    let channel: any Channel
    let limit: Int
    /// Where snapshots and diffs sent are counted, with their bytes.
    let metrics: GatewayMetrics?
    private let unsent = Atomic<Int>(0)

    init(channel: any Channel, limit: Int, metrics: GatewayMetrics? = nil) {
        self.channel = channel
        self.limit = limit
        self.metrics = metrics
    }

    func send(_ message: SliceMessage) -> SliceSendResult {
        guard channel.isActive else { return .closed }
        guard unsent.load(ordering: .relaxed) < limit else { return .overflowed }
        unsent.add(1, ordering: .relaxed)
        // Encoded on the channel's event loop, so that the gateway's one thread does not encode for every runner.
        channel.eventLoop.execute {
            guard let line = try? AgentStreamServer.line(message) else {
                self.unsent.subtract(1, ordering: .relaxed)
                self.channel.close(promise: nil)
                return
            }
            if message.type != .keepalive { self.metrics?.slicePushed(bytes: line.readableBytes) }
            self.channel.writeAndFlush(line).whenComplete { _ in self.unsent.subtract(1, ordering: .relaxed) }
        }
        return .queued
    }

    func send(line: [UInt8]) -> SliceSendResult {
        guard channel.isActive else { return .closed }
        guard unsent.load(ordering: .relaxed) < limit else { return .overflowed }
        unsent.add(1, ordering: .relaxed)
        let buffer = ByteBuffer(bytes: line)
        channel.writeAndFlush(buffer).whenComplete { _ in self.unsent.subtract(1, ordering: .relaxed) }
        return .queued
    }

    func close() { channel.close(promise: nil) }

    func close(refusing refusal: AgentStreamRefusal) { AgentStreamServer.refuse(channel, refusal) }

    var isOpen: Bool { channel.isActive }
}
