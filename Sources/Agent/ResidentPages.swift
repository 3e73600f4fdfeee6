import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Gives back the pages of the agent's binary and libraries that only its start-up touched.
///
/// An idle agent runs little code, but that code is spread across a large binary and the Swift, Foundation and
/// BoringSSL code it links, and the kernel maps 64 KB around every page fault in a file. So an agent that has
/// started, enrolled and applied its first slice holds some 35 MB of clean file pages, most of which it will not
/// touch again. Once in sync, it asks the kernel to read its file mappings page by page from then on
/// (`MADV_RANDOM`, which turns off read-ahead) and to reclaim what they hold now (`MADV_PAGEOUT`). Page-out leaves
/// the pages another process also maps (libc, libstdc++), so the read-only mappings that this process never wrote
/// are then dropped from its page table as well (`MADV_DONTNEED`): those pages stay in memory for the others. Pages
/// the agent still uses come back on their next touch, from the page cache or the file. Nothing is written
/// anywhere, and no page this process wrote (relocations, data) is touched.
enum ResidentPages {
    /// What `/proc/self/smaps` (or `/proc/self/maps`) says of one mapping.
    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var isWritable: Bool
        var path: String
        /// How many kB of it this process wrote (copy-on-write: relocations, data); nil when the text did not say
        /// (`/proc/self/maps`).
        var anonymousKilobytes: Int? = nil

        /// Whether its pages may be dropped from this process's page table: the next touch reads them back from
        /// the file unchanged, since nothing can write them and nothing in them was written.
        var isUnwrittenReadOnly: Bool { !isWritable && anonymousKilobytes == 0 }
    }

    /// The mappings of files in `/proc/self/smaps` or `/proc/self/maps` text: its anonymous memory, stacks, heap
    /// and the kernel's `[vdso]` and `[vvar]` are left alone.
    static func fileMappings(in text: String) -> [Mapping] {
        var mappings: [Mapping] = []
        // Whether the smaps field lines that follow belong to the last mapping in `mappings`.
        var isInFileMapping = false
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {
                if isInFileMapping, first == "Anonymous:", fields.count >= 2, let kilobytes = Int(fields[1]) {
                    mappings[mappings.count - 1].anonymousKilobytes = kilobytes
                }
                continue
            }
            isInFileMapping = false
            guard fields.count == 6 else { continue }
            let path = fields[5].trimmingPrefix(while: { $0 == " " })
            guard path.hasPrefix("/") else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
                end > start
            else { continue }
            mappings.append(Mapping(start: start, end: end, isWritable: fields[1].contains("w"), path: String(path)))
            isInFileMapping = true
        }
        return mappings
    }

    /// Advises the kernel as the type's documentation says, for every file mapping of this process; returns how
    /// many mappings it advised. Best effort: a kernel without `MADV_PAGEOUT` (before Linux 5.4) only stops the
    /// read-ahead and drops the unwritten read-only mappings, and elsewhere nothing happens.
    @discardableResult
    static func releaseStartupPages() -> Int {
        #if os(Linux)
            // smaps, not maps: only it tells which mappings hold pages this process wrote.
            guard let smaps = readToEnd("/proc/self/smaps") else { return 0 }
            let pageOut: Int32 = 21  // MADV_PAGEOUT (Linux 5.4); not exported by the Glibc module
            var advised = 0
            for mapping in fileMappings(in: smaps) {
                guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
                let length = Int(mapping.end - mapping.start)
                // In a writable mapping only the clean pages are reclaimed; written ones are anonymous memory.
                _ = madvise(address, length, MADV_RANDOM)
                if madvise(address, length, pageOut) == 0 { advised += 1 }
                // Never on a written page: dropping it would bring back the file's bytes, without the relocations.
                if mapping.isUnwrittenReadOnly { _ = madvise(address, length, MADV_DONTNEED) }
            }
            return advised
        #else
            return 0
        #endif
    }

    /// The whole text of a `/proc` file. `String(contentsOfFile:)` stops after its first read for a file that states
    /// no size, as `/proc` files do, and a read gives at most a page of `/proc/self/smaps` or `/proc/self/maps`.
    static func readToEnd(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes.append(contentsOf: chunk[..<count])
            } else if count == 0 {
                return String(decoding: bytes, as: UTF8.self)
            } else if errno != EINTR {
                return nil
            }
        }
    }
}
