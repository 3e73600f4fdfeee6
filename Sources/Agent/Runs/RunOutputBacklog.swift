import Foundation
import Logging
import Resources

/// Output of remote runs that the agent could not send (no stream was up, or a send failed), kept until the next
/// stream: per run, bounded by the run's `maxOutputBytes` with its head and tail kept as the controller keeps them
/// (``OutputBuffer``), and on disk in the state directory so it survives an agent restart.
///
/// Files: `run-output/<run-uid>.backlog` (0600, the UID percent-encoded as in the controller's store), rewritten
/// whole and atomically: when the run ends, and while it runs whenever half its limit has arrived or a second has
/// passed since the last write, checked as output arrives. A crash loses at most what arrived since the last
/// write. The file holds a version byte (1), the sequence of the first kept chunk and the bytes dropped from the
/// middle (8 bytes each, big-endian), then records: one byte for the stream (0 stdout, 1 stderr), four for the
/// length (big-endian), then the bytes; the head's records, then the tail's.
///
/// Wiring: ``RunService`` appends here what it cannot send, sends a run's backlog before any newer output of that
/// run and before its result when a stream comes up (``take(_:)``, then ``remove(_:)`` once sent), and drops the
/// backlogs of runs its ledger no longer holds (``retain(_:)``). Scheduled runs keep none: the controller keeps
/// only the latest scheduled run's output, from its `runStarted` on.
public struct RunOutputBacklog: Sendable {
    /// The directory inside the state directory.
    public static let directoryName = "run-output"

    /// One run's unsent output.
    public struct Pending: Sendable, Equatable {
        /// The unsent bytes kept, head then tail; ``OutputBuffer/droppedBytes`` were between them (plus
        /// ``restoredDroppedBytes``).
        public var buffer: OutputBuffer
        /// The sequence number of the first unsent chunk.
        public var firstSequence: Int64
        /// Bytes dropped from the middle before the agent restarted (the file keeps only the count).
        public var restoredDroppedBytes: Int64 = 0
        /// Bytes appended since the file was last written.
        var unsavedBytes = 0
        var lastSave: Date?

        /// Bytes dropped from the middle of this backlog: never sent.
        public var droppedBytes: Int64 { buffer.droppedBytes + restoredDroppedBytes }
    }

    /// Where the files go; nil keeps the backlog in memory only.
    public let directory: String?
    public private(set) var pending: [String: Pending] = [:]
    private let logger: Logger

    /// Loads the backlogs kept in `stateDirectory` (nil: memory only). A file that cannot be read is deleted and
    /// logged: its output is lost, the run's result is not.
    public init(stateDirectory: String?, logger: Logger) {
        self.logger = logger
        directory = stateDirectory.map { "\($0)/\(Self.directoryName)" }
        guard let directory, let files = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for file in files where file.hasSuffix(".backlog") {
            let path = "\(directory)/\(file)"
            guard let uid = String(file.dropLast(".backlog".count)).removingPercentEncoding,
                let data = FileManager.default.contents(atPath: path), let loaded = Self.decode(Array(data))
            else {
                logger.warning(
                    "unreadable output backlog deleted; the output it held is lost",
                    metadata: ["steady.file": "\(path)"])
                unlink(path)
                continue
            }
            pending[uid] = loaded
        }
    }

    /// Whether `uid` has unsent output.
    public func holds(_ uid: String) -> Bool { pending[uid] != nil }

    /// The runs with unsent output, by UID.
    public var runUIDs: [String] { pending.keys.sorted() }

    /// Keeps `bytes` of run `uid`, which would have been chunk `sequence`, bounded by `limit` bytes per run.
    public mutating func append(
        _ bytes: [UInt8], from stream: RunOutputStream, uid: String, sequence: Int64, limit: Int, now: Date = Date()
    ) {
        guard !bytes.isEmpty else { return }
        var entry = pending[uid] ?? Pending(buffer: OutputBuffer(limit: limit), firstSequence: sequence)
        entry.buffer.append(bytes, from: stream)
        entry.unsavedBytes += bytes.count
        let isDue =
            entry.unsavedBytes >= max(1, entry.buffer.limit / 2)
            || entry.lastSave.map { now.timeIntervalSince($0) >= 1 } ?? true
        pending[uid] = entry
        if isDue { save(uid, now: now) }
    }

    /// Writes the file of `uid` if output arrived since it was last written (when the run ends).
    public mutating func flush(_ uid: String, now: Date = Date()) {
        guard let entry = pending[uid], entry.unsavedBytes > 0 else { return }
        save(uid, now: now)
    }

    /// The unsent output of `uid`, taken out of the backlog (its file stays until ``remove(_:)``): while it is
    /// being sent, newer output of the run starts a new backlog entry, sent after it.
    public mutating func take(_ uid: String) -> Pending? {
        pending.removeValue(forKey: uid)
    }

    /// Puts back what could not be sent after ``take(_:)``, before anything kept meanwhile.
    public mutating func putBack(_ entry: Pending, uid: String) {
        if let newer = pending[uid] {
            var merged = entry
            for segment in newer.buffer.segments { merged.buffer.append(segment.bytes, from: segment.stream) }
            merged.restoredDroppedBytes += newer.droppedBytes
            pending[uid] = merged
        } else {
            pending[uid] = entry
        }
        save(uid)
    }

    /// Everything taken of `uid` was sent: its file goes, or holds only the newer output pending.
    public mutating func remove(_ uid: String) {
        if pending[uid] != nil {
            save(uid)
        } else if let path = path(uid) {
            unlink(path)
        }
    }

    /// Drops the backlogs of runs for which `keep` is false (runs the ledger no longer reports).
    public mutating func retain(_ keep: (String) -> Bool) {
        for uid in pending.keys where !keep(uid) {
            pending[uid] = nil
            if let path = path(uid) { unlink(path) }
        }
    }

    // MARK: File

    private func path(_ uid: String) -> String? {
        directory.map { "\($0)/\(OutputRecords.fileName(uid)).backlog" }
    }

    private mutating func save(_ uid: String, now: Date = Date()) {
        guard var entry = pending[uid] else { return }
        entry.unsavedBytes = 0
        entry.lastSave = now
        pending[uid] = entry
        guard let directory, let path = path(uid) else { return }
        do {
            try PrivateFile.ensureDirectory(directory)
            try PrivateFile.write(Self.encode(entry), to: path)
        } catch {
            logger.warning(
                "cannot keep unsent run output on disk; it is kept in memory only",
                metadata: ["steady.run": "\(uid)", "steady.error": "\(error)"])
        }
    }

    static func encode(_ entry: Pending) -> [UInt8] {
        [1] + OutputRecords.bigEndian(UInt64(bitPattern: entry.firstSequence), width: 8)
            + OutputRecords.bigEndian(UInt64(bitPattern: entry.droppedBytes), width: 8)
            + OutputRecords.encode(entry.buffer.segments)
    }

    static func decode(_ bytes: [UInt8]) -> Pending? {
        guard bytes.count >= 17, bytes[0] == 1 else { return nil }
        let (segments, isComplete) = OutputRecords.decode(bytes[17...])
        guard isComplete else { return nil }
        // A buffer whose head holds all that was kept, as it was kept.
        var buffer = OutputBuffer(limit: 2 * segments.reduce(0) { $0 + $1.bytes.count })
        for segment in segments { buffer.append(segment.bytes, from: segment.stream) }
        return Pending(
            buffer: buffer, firstSequence: Int64(bitPattern: OutputRecords.integer(bytes[1..<9])),
            restoredDroppedBytes: Int64(bitPattern: OutputRecords.integer(bytes[9..<17])))
    }
}
