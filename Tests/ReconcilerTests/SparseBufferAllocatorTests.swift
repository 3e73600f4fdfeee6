import NIOCore
import Testing

@testable import Reconciler

@Suite(.timeLimit(.minutes(5))) struct SparseBufferAllocatorTests {
    let allocator = SparseBufferAllocator.allocator

    func isMapped(_ buffer: ByteBuffer) -> Bool {
        buffer.withVeryUnsafeBytes { SparseBufferAllocator.isMapped(UnsafeMutableRawPointer(mutating: $0.baseAddress!)) }
    }

    @Test func largeBuffersGetPagesOfTheirOwnAndSmallOnesComeFromTheHeap() {
        var large = allocator.buffer(capacity: 32 * 1024)
        var small = allocator.buffer(capacity: 512)
        large.writeString("x")
        small.writeString("y")
        #expect(isMapped(large))
        #expect(!isMapped(small))
    }

    @Test func growingABufferKeepsItsBytesAcrossTheThreshold() {
        var buffer = allocator.buffer(capacity: 100)
        let text = String(repeating: "steady ", count: 10_000)
        buffer.writeString("start;")
        buffer.writeString(text)
        #expect(buffer.capacity >= SparseBufferAllocator.mappingThreshold)
        #expect(buffer.readString(length: 6) == "start;")
        #expect(buffer.readString(length: buffer.readableBytes) == text)
        #expect(isMapped(buffer))
    }

    @Test func copiesAndSlicesOfAMappedBufferAreIndependent() {
        var original = allocator.buffer(capacity: 40 * 1024)
        original.writeBytes(Array(repeating: UInt8(7), count: 20_000))
        var copy = original
        copy.writeString("more")  // copy on write: a second mapped block
        #expect(original.readableBytes == 20_000)
        #expect(copy.readableBytes == 20_004)
        #expect(original.getBytes(at: 19_999, length: 1) == [7])
    }
}
