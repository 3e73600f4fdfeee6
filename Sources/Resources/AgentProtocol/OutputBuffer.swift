/// One run's output, bounded: the first half of the limit and the last half are kept, the middle is dropped.
///
/// Errors are usually at the end of a run's output, so the tail is kept exactly; the head shows how the run began.
/// Each piece keeps the stream it came from. A value with no I/O, so a 30 MB output costs at most `limit` bytes.
///
/// Wiring: the agent's `RunExecutor` appends every chunk it reads, and sends its kept segments again with the
/// result after a reconnect; the controller keeps one per runner in its output store (bounded by
/// `RunRequest.maxOutputBytes`) and serves it from the RemoteRun's `log` subresource.
public struct OutputBuffer: Sendable, Equatable {
    /// Consecutive bytes from one stream.
    public struct Segment: Sendable, Equatable {
        public var stream: RunOutputStream
        public var bytes: [UInt8]

        public init(stream: RunOutputStream, bytes: [UInt8]) {
            self.stream = stream
            self.bytes = bytes
        }
    }

    /// The most bytes kept, head and tail together.
    public let limit: Int
    /// Every byte appended, kept or not.
    public private(set) var totalBytes: Int64 = 0

    private var headSegments: [Segment] = []
    private var headCount = 0
    /// Whether the head takes no more bytes: bytes were dropped (``skip(_:)``) before it was full.
    private var isHeadClosed = false
    /// The tail: `tailSegments[tailStart...]`, `tailCount` bytes, trimmed at the front as bytes arrive.
    private var tailSegments: [Segment] = []
    private var tailStart = 0
    private var tailCount = 0

    /// Segments grow by appending up to this size; a larger segment would make trimming the tail's front costly.
    private static let segmentSize = 4096

    /// Creates an empty buffer keeping at most `limit` bytes (1 MiB by default).
    public init(limit: Int = RunProtocol.defaultMaximumOutputBytes) {
        self.limit = max(0, limit)
    }

    private var headLimit: Int { limit / 2 }
    private var tailLimit: Int { limit - headLimit }

    /// The bytes kept.
    public var keptBytes: Int { headCount + tailCount }
    /// The bytes dropped from the middle.
    public var droppedBytes: Int64 { totalBytes - Int64(keptBytes) }
    /// Whether the middle was dropped (`outputTruncated`).
    public var isTruncated: Bool { droppedBytes > 0 }

    /// Adds bytes read from `stream`.
    public mutating func append(_ bytes: some Collection<UInt8>, from stream: RunOutputStream) {
        totalBytes += Int64(bytes.count)
        var rest = bytes[...]
        if headCount < headLimit && !isHeadClosed {
            let taken = rest.prefix(headLimit - headCount)
            Self.add(taken, from: stream, to: &headSegments)
            headCount += taken.count
            rest = rest.dropFirst(taken.count)
        }
        guard !rest.isEmpty, tailLimit > 0 else { return }
        // Only the last `tailLimit` bytes of what is left can survive.
        let kept = rest.suffix(tailLimit)
        Self.add(kept, from: stream, to: &tailSegments)
        tailCount += kept.count
        trimTail()
    }

    /// Records that `count` bytes were dropped here, before they reached this buffer (an agent's backlog kept only
    /// its head and tail): they count in ``totalBytes`` and ``droppedBytes``, and the head takes no more bytes, so
    /// that the dropped bytes stay between the head and the tail, where a reader shows them.
    public mutating func skip(_ count: Int64) {
        guard count > 0 else { return }
        totalBytes += count
        isHeadClosed = true
    }

    /// The kept output in order: the head, then the tail. When ``isTruncated``, ``droppedBytes`` were between them.
    public var segments: [Segment] { headSegments + tailSegments[tailStart...] }

    /// The head: the first bytes of the output, up to half the limit.
    public var head: [Segment] { headSegments }
    /// The tail: the last bytes after the head, up to half the limit.
    public var tail: [Segment] { Array(tailSegments[tailStart...]) }

    /// The kept bytes of one stream, or of both interleaved as they were read.
    public func bytes(of stream: RunOutputStream? = nil) -> [UInt8] {
        segments.filter { stream == nil || $0.stream == stream }.flatMap(\.bytes)
    }

    private static func add(_ bytes: some Collection<UInt8>, from stream: RunOutputStream, to segments: inout [Segment])
    {
        guard !bytes.isEmpty else { return }
        if let last = segments.indices.last, segments[last].stream == stream,
            segments[last].bytes.count + bytes.count <= segmentSize
        {
            segments[last].bytes.append(contentsOf: bytes)
        } else {
            var start = bytes.startIndex
            while start != bytes.endIndex {
                let end = bytes.index(start, offsetBy: segmentSize, limitedBy: bytes.endIndex) ?? bytes.endIndex
                segments.append(Segment(stream: stream, bytes: Array(bytes[start..<end])))
                start = end
            }
        }
    }

    private mutating func trimTail() {
        var excess = tailCount - tailLimit
        while excess > 0 {
            let size = tailSegments[tailStart].bytes.count
            if size <= excess {
                tailStart += 1
                tailCount -= size
                excess -= size
            } else {
                tailSegments[tailStart].bytes.removeFirst(excess)
                tailCount -= excess
                excess = 0
            }
        }
        // Drop the trimmed segments once they are half the array, so trimming stays amortized O(1) per byte.
        if tailStart > 64 && tailStart * 2 > tailSegments.count {
            tailSegments.removeFirst(tailStart)
            tailStart = 0
        }
    }

    public static func == (left: OutputBuffer, right: OutputBuffer) -> Bool {
        left.limit == right.limit && left.totalBytes == right.totalBytes && left.segments == right.segments
    }
}
