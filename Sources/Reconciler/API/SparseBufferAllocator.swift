#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@_spi(CustomByteBufferAllocator) import NIOCore

/// A `ByteBufferAllocator` for long-lived connections that gives every buffer of 16 KiB or more pages of its own.
///
/// NIOSSL gives each connection a 32 KiB plaintext read buffer and a 16 KiB write buffer, sized for the largest TLS
/// record. An agent's messages are a few hundred bytes, so most of those pages are never written. From the heap
/// those buffers cost their full size, because heap pages have been written before; mapped on their own, a page
/// that is never written costs nothing. Smaller buffers come from `malloc` as usual.
///
/// Every block starts with a 16-byte header that holds its mapped length (0 for a `malloc` block), so
/// `deallocate`, which is not told the size, knows how to give it back. The pointer handed out stays 16-byte
/// aligned, as `malloc`'s is.
enum SparseBufferAllocator {
    /// The allocator; set it as a channel's `ChannelOptions.allocator` before its handlers are added.
    static let allocator = ByteBufferAllocator(
        allocate: { size in sparseAllocate(size) },
        reallocate: { pointer, oldSize, newSize in sparseReallocate(pointer, oldSize, newSize) },
        deallocate: { pointer in sparseDeallocate(pointer) },
        copy: { destination, source, count in destination.copyMemory(from: source, byteCount: count) }
    )

    /// Buffers at least this large get pages of their own.
    static let mappingThreshold = 16 * 1024

    /// Whether a block handed out by ``allocator`` has pages of its own (for tests).
    static func isMapped(_ pointer: UnsafeMutableRawPointer) -> Bool {
        mappedLength(of: pointer) > 0
    }
}

private let headerSize = 16
private let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

private func mappedLength(of pointer: UnsafeMutableRawPointer) -> Int {
    (pointer - headerSize).load(as: Int.self)
}

private func sparseAllocate(_ size: Int) -> UnsafeMutableRawPointer? {
    if size >= SparseBufferAllocator.mappingThreshold {
        let length = (size + headerSize + pageSize - 1) / pageSize * pageSize
        let block = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        if let block, block != MAP_FAILED {
            block.storeBytes(of: length, as: Int.self)
            return block + headerSize
        }
        // Out of mappings: the heap still works.
    }
    guard let block = malloc(size + headerSize) else { return nil }
    block.storeBytes(of: 0, as: Int.self)
    return block + headerSize
}

private func sparseReallocate(_ pointer: UnsafeMutableRawPointer?, _ oldSize: Int, _ newSize: Int)
    -> UnsafeMutableRawPointer?
{
    guard let pointer else { return sparseAllocate(newSize) }
    let wasMapped = mappedLength(of: pointer) > 0
    if !wasMapped, newSize < SparseBufferAllocator.mappingThreshold {
        guard let block = realloc(pointer - headerSize, newSize + headerSize) else { return nil }
        return block + headerSize
    }
    guard let moved = sparseAllocate(newSize) else { return nil }
    moved.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
    sparseDeallocate(pointer)
    return moved
}

private func sparseDeallocate(_ pointer: UnsafeMutableRawPointer) {
    let block = pointer - headerSize
    let length = mappedLength(of: pointer)
    if length > 0 {
        munmap(block, length)
    } else {
        free(block)
    }
}
