import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Atomic writes of files that may hold secrets.
enum PrivateFile {
    /// Writes `bytes` to a temporary file beside `path` with `mode`, flushes it and renames it over `path`, so a
    /// reader (or a restart after a crash) sees the old contents or the new, never a mixture.
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(AgentError) {
        let directory = (path as NSString).deletingLastPathComponent
        func failure(_ action: String, _ code: Int32 = errno) -> AgentError {
            AgentError(
                code: .storage, message: "cannot \(action) \(path)",
                underlying: POSIXErrorCode(rawValue: code).map { POSIXError($0) })
        }
        var generator = SystemRandomNumberGenerator()
        let suffix = String(UInt64.random(in: 0...UInt64.max, using: &generator), radix: 16)
        let temporary = "\(directory)/.\((path as NSString).lastPathComponent).tmp-\(suffix)"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw failure("create a temporary file to write") }
        var isOpen = true
        defer {
            if isOpen { _ = close(descriptor) }
        }
        do throws(AgentError) {
            guard fchmod(descriptor, mode) == 0 else { throw failure("set the permissions of") }
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { buffer in
                    systemWrite(descriptor, buffer.baseAddress, buffer.count)
                }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw failure("write")
                }
                offset += written
            }
            guard fsync(descriptor) == 0 else { throw failure("flush") }
            isOpen = false
            guard close(descriptor) == 0 else { throw failure("close") }
            guard rename(temporary, path) == 0 else { throw failure("rename a temporary file to") }
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }

    /// The contents of `path`, or nil when it does not exist.
    static func read(_ path: String) throws(AgentError) -> Data? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw AgentError(code: .storage, message: "cannot read \(path)", underlying: error)
        }
    }

    /// Creates `path` as a directory with mode 0700 when it does not exist; returns its permission bits.
    @discardableResult
    static func ensureDirectory(_ path: String) throws(AgentError) -> Int {
        do {
            if !FileManager.default.fileExists(atPath: path) {
                try FileManager.default.createDirectory(
                    atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            return (attributes[.posixPermissions] as? Int) ?? 0
        } catch {
            throw AgentError(code: .storage, message: "cannot create the state directory \(path)", underlying: error)
        }
    }
}

private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}
