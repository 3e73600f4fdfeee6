import Foundation
import Resources

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Atomic writes of files that may hold secrets.
enum PrivateFile {
    /// Writes `bytes` atomically with exactly `mode` (see ``AtomicFile``).
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(AgentError) {
        do {
            try AtomicFile.write(bytes, to: path, mode: mode)
        } catch {
            throw AgentError(code: .storage, message: "cannot \(error.action) \(path)", underlying: error.underlying)
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

    /// Renames the damaged file `path` to `<path>.corrupt-<seconds since 1970>`, where it stays for inspection
    /// while a new one replaces it; returns the new name.
    static func setAside(_ path: String, now: Date = Date()) throws(AgentError) -> String {
        let aside = "\(path).corrupt-\(Int(now.timeIntervalSince1970))"
        guard rename(path, aside) == 0 else {
            throw AgentError(
                code: .storage, message: "cannot set the damaged file \(path) aside as \(aside); move or remove it",
                underlying: POSIXErrorCode(rawValue: errno).map { POSIXError($0) })
        }
        return aside
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
