import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Atomic writes of files that may hold secrets: keys, tokens, kubeconfigs, an agent's credential and slice.
public enum AtomicFile {
    /// What failed, on which file, and the system's reason.
    public struct WriteError: Error, CustomStringConvertible {
        /// `create a temporary file to write`, `flush`, `rename a temporary file to`, ...
        public var action: String
        public var path: String
        public var code: Int32

        /// The system error, for callers that wrap this one.
        public var underlying: POSIXError? { POSIXErrorCode(rawValue: code).map { POSIXError($0) } }
        public var description: String { "cannot \(action) \(path): \(String(cString: strerror(code)))" }
    }

    /// Writes `bytes` to a temporary file beside `path` created with exactly `mode` (never wider, whatever the
    /// umask), flushes it and renames it over `path`: a reader, or a restart after a crash, sees the old
    /// contents or the new, never a mixture.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(WriteError) {
        let directory = (path as NSString).deletingLastPathComponent
        func failure(_ action: String, _ code: Int32 = errno) -> WriteError {
            WriteError(action: action, path: path, code: code)
        }
        var generator = SystemRandomNumberGenerator()
        let suffix = String(UInt64.random(in: 0...UInt64.max, using: &generator), radix: 16)
        let temporary = "\(directory.isEmpty ? "." : directory)/.\((path as NSString).lastPathComponent).tmp-\(suffix)"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw failure("create a temporary file to write") }
        var isOpen = true
        defer {
            if isOpen { _ = close(descriptor) }
        }
        do throws(WriteError) {
            guard fchmod(descriptor, mode) == 0 else { throw failure("set the permissions of") }
            guard writeAll(bytes, to: descriptor) else { throw failure("write") }
            guard fsync(descriptor) == 0 else { throw failure("flush") }
            isOpen = false
            guard close(descriptor) == 0 else { throw failure("close") }
            guard rename(temporary, path) == 0 else { throw failure("rename a temporary file to") }
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }
}

private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawBufferPointer) -> Int {
    write(descriptor, buffer.baseAddress, buffer.count)
}

extension AtomicFile {
    /// Writes all of `bytes` at `descriptor`'s position, writing again after a short or interrupted write; false on
    /// an error, with `errno` saying which.
    public static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(descriptor, UnsafeRawBufferPointer(rebasing: buffer[offset...]))
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return false }
                offset += written
            }
            return true
        }
    }
}
