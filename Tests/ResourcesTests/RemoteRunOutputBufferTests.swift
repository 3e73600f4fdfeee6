import Testing

@testable import Resources

/// A run's output, bounded per runner with its head and its exact tail kept.
@Suite(.timeLimit(.minutes(5))) struct RemoteRunOutputBufferTests {
    /// Bytes that differ by position, so a misplaced byte shows.
    static func pattern(_ count: Int, from start: Int = 0) -> [UInt8] {
        (start..<(start + count)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
    }

    @Test func smallOutputIsKeptWhole() {
        var buffer = OutputBuffer(limit: 1024)
        buffer.append(Array("hello\n".utf8), from: .stdout)
        buffer.append(Array("oops\n".utf8), from: .stderr)
        buffer.append(Array("bye\n".utf8), from: .stdout)
        #expect(!buffer.isTruncated)
        #expect(buffer.totalBytes == 15)
        #expect(buffer.bytes(of: .stdout) == Array("hello\nbye\n".utf8))
        #expect(buffer.bytes(of: .stderr) == Array("oops\n".utf8))
        #expect(buffer.bytes() == Array("hello\noops\nbye\n".utf8))
        #expect(buffer.segments.map(\.stream) == [.stdout, .stderr, .stdout])
    }

    @Test func thirtyMegabytesKeepTheHeadAndTheExactTail() {
        let limit = 1024 * 1024
        var buffer = OutputBuffer(limit: limit)
        let total = 30 * 1024 * 1024
        var written = 0
        var sizes = [1, 7, 4096, 65_536, 100_003, 3]
        while written < total {
            let size = min(sizes[0], total - written)
            sizes.append(sizes.removeFirst())
            buffer.append(Self.pattern(size, from: written), from: written % 2 == 0 ? .stdout : .stderr)
            written += size
        }
        #expect(buffer.totalBytes == Int64(total))
        #expect(buffer.keptBytes == limit)
        #expect(buffer.isTruncated)
        #expect(buffer.droppedBytes == Int64(total - limit))
        #expect(buffer.head.flatMap(\.bytes) == Self.pattern(limit / 2))
        #expect(buffer.tail.flatMap(\.bytes) == Self.pattern(limit / 2, from: total - limit / 2))
    }

    @Test func theTailKeepsEachPieceStream() {
        var buffer = OutputBuffer(limit: 8)
        buffer.append(Array("ABCD".utf8), from: .stdout)
        buffer.append(Array("1234567890".utf8), from: .stdout)
        buffer.append(Array("xy".utf8), from: .stderr)
        #expect(buffer.head == [.init(stream: .stdout, bytes: Array("ABCD".utf8))])
        #expect(
            buffer.tail == [
                .init(stream: .stdout, bytes: Array("90".utf8)), .init(stream: .stderr, bytes: Array("xy".utf8)),
            ])
        #expect(buffer.droppedBytes == 8)
    }

    @Test func aZeroLimitKeepsNothingButCounts() {
        var buffer = OutputBuffer(limit: 0)
        buffer.append(Self.pattern(100), from: .stdout)
        #expect(buffer.keptBytes == 0)
        #expect(buffer.totalBytes == 100)
        #expect(buffer.isTruncated)
    }
}
