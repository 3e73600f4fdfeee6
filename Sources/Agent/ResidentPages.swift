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
/// (`MADV_RANDOM`, which turns off the fault-around) and to reclaim what they hold now (`MADV_PAGEOUT`). Pages it
/// still uses come back one at a time from the page cache on their next touch; pages another process also maps
/// stay where they are. Nothing is written anywhere: these pages are clean copies of files.
enum ResidentPages {
    /// What `/proc/self/maps` says of one mapping.
    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var isWritable: Bool
        var path: String
    }

    /// The mappings of files in `/proc/self/maps` text: its anonymous memory, stacks, heap and the kernel's
    /// `[vdso]` and `[vvar]` are left alone.
    static func fileMappings(in maps: String) -> [Mapping] {
        maps.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6 else { return nil }
            let path = fields[5].trimmingPrefix(while: { $0 == " " })
            guard path.hasPrefix("/") else { return nil }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
                end > start
            else { return nil }
            return Mapping(start: start, end: end, isWritable: fields[1].contains("w"), path: String(path))
        }
    }

    /// Advises the kernel as the type's documentation says, for every file mapping of this process; returns how
    /// many mappings it advised. Best effort: a kernel without `MADV_PAGEOUT` (before Linux 5.4) only stops the
    /// fault-around, and elsewhere nothing happens.
    @discardableResult
    static func releaseStartupPages() -> Int {
        #if os(Linux)
            guard let maps = readToEnd("/proc/self/maps") else { return 0 }
            let pageOut: Int32 = 21  // MADV_PAGEOUT (Linux 5.4); not exported by the Glibc module
            var advised = 0
            for mapping in fileMappings(in: maps) {
                guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
                let length = Int(mapping.end - mapping.start)
                // In a writable mapping only the clean pages are reclaimed; written ones are anonymous memory.
                _ = madvise(address, length, MADV_RANDOM)
                if madvise(address, length, pageOut) == 0 { advised += 1 }
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
