import Foundation
import NIOPosix
import Resources
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An append-only file of records (one line each) kept open, made durable with group commit on dedicated threads:
/// the storage of ``RunLedger``.
///
/// ``append(_:)`` writes a record at once (one `write(2)`, no flush): a reader in this process, or after the
/// process is killed, sees it; after a power loss it may be gone. ``makeDurable()`` returns once every record
/// appended before it is on disk: one `fdatasync` serves every caller waiting when it starts, so runs that arrive in
/// the same instant share one flush, and the flush runs on ``syncThreads``, never on the cooperative pool (a
/// blocked cooperative thread would stall every task of the process). ``replace(with:)`` rewrites the file whole,
/// atomically (compaction).
///
/// Wiring: ``RunLedger`` appends a record per change and compacts; ``RunService`` awaits ``makeDurable()`` after
/// recording a start (before the process starts) and a result (before it is reported).
final class RunJournal: Sendable {
    /// Threads that only wait for the disk, shared by every journal of the process (a simulator runs thousands of
    /// agents in one process; a few flushes at once keep the disk busy without a thread per agent).
    static let syncThreads: NIOThreadPool = {
        let threads = NIOThreadPool(numberOfThreads: 4)
        threads.start()
        return threads
    }()

    private struct State {
        var descriptor: Int32
        /// Bytes in the file: when a compaction is due.
        var size: Int
        /// Records appended, and records known to be on disk.
        var appended = 0
        var durable = 0
        var isSyncing = false
        /// Descriptors replaced while a flush was going: closed once it returns, so it never flushes a reused one.
        var retired: [Int32] = []
        var waiters: [(upTo: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    /// The file.
    let path: String
    private let state: Mutex<State>

    /// Opens `path` for appending, creating it (0600) when absent.
    init(path: String) throws(AgentError) {
        self.path = path
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Self.failure("open", path) }
        var status = stat()
        let size = fstat(descriptor, &status) == 0 ? Int(status.st_size) : 0
        state = Mutex(State(descriptor: descriptor, size: size))
    }

    deinit {
        state.withLock { state in
            for descriptor in state.retired + [state.descriptor] { _ = close(descriptor) }
        }
    }

    /// Bytes in the file now.
    var size: Int { state.withLock { $0.size } }

    /// Writes `record` (one line, newline included) at the end of the file, not flushed.
    func append(_ record: [UInt8]) throws(AgentError) {
        let result: Int32? = state.withLock { state in
            guard AtomicFile.writeAll(record, to: state.descriptor) else {
                let code = errno
                // A record cut short would hide every record after it: the file goes back to its last whole one.
                _ = ftruncate(state.descriptor, off_t(state.size))
                return code
            }
            state.size += record.count
            state.appended += 1
            return nil
        }
        if let code = result { throw Self.failure("append to", path, code) }
    }

    /// Returns once every record appended so far is on disk.
    func makeDurable() async throws(AgentError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let leads: Bool? = state.withLock { state in
                    guard state.durable < state.appended else { return nil }
                    state.waiters.append((state.appended, continuation))
                    defer { state.isSyncing = true }
                    return !state.isSyncing
                }
                switch leads {
                case nil: continuation.resume()
                case true?: Self.syncThreads.submit { _ in self.drain() }
                case false?: break
                }
            }
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError(code: .storage, message: "cannot flush \(path)", underlying: error)
        }
    }

    /// Flushes until no caller waits (on a sync thread): each round covers every record appended before it began.
    private func drain() {
        while true {
            let (descriptor, target) = state.withLock { ($0.descriptor, $0.appended) }
            let code: Int32? = fdatasync(descriptor) == 0 ? nil : errno
            let (ready, isDone) = state.withLock { state in
                for old in state.retired { _ = close(old) }
                state.retired = []
                if code == nil { state.durable = max(state.durable, target) }
                let ready = state.waiters.filter { code != nil || $0.upTo <= target }
                state.waiters.removeAll { code != nil || $0.upTo <= target }
                if state.waiters.isEmpty { state.isSyncing = false }
                return (ready, state.waiters.isEmpty)
            }
            for waiter in ready {
                if let code {
                    waiter.continuation.resume(throwing: Self.failure("flush", path, code))
                } else {
                    waiter.continuation.resume()
                }
            }
            if isDone { return }
        }
    }

    /// Replaces the file's contents with `records` atomically (a flushed temporary file renamed over it); what was
    /// appended before is then durable too, as the new file holds it.
    func replace(with records: [UInt8]) throws(AgentError) {
        let ready = try state.withLock { state throws(AgentError) in
            try PrivateFile.write(records, to: path)
            let descriptor = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard descriptor >= 0 else { throw Self.failure("open", path) }
            if state.isSyncing {
                state.retired.append(state.descriptor)
            } else {
                _ = close(state.descriptor)
            }
            state.descriptor = descriptor
            state.size = records.count
            state.durable = state.appended
            // Everyone waiting is served by the flushed new file.
            let ready = state.waiters.map(\.continuation)
            state.waiters = []
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    private static func failure(_ action: String, _ path: String, _ code: Int32 = errno) -> AgentError {
        AgentError(
            code: .storage, message: "cannot \(action) \(path): \(String(cString: strerror(code)))",
            underlying: POSIXErrorCode(rawValue: code).map { POSIXError($0) })
    }
}
