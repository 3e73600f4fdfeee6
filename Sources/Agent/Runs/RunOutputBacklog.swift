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
/// write. The file holds a version byte (2), the sequence of the first kept chunk, the bytes dropped from the
/// middle and the bytes of the head (8 bytes each, big-endian), then records: one byte for the stream (0 stdout,
/// 1 stderr), four for the length (big-endian), then the bytes; the head's records, then the tail's. (Version 1,
/// without the head's size, is still read; its gap is not placed.)
///
/// When the middle was dropped, the first chunk of the tail says how many bytes (`RunOutputChunk.droppedBefore`), so
/// the controller's log shows the gap where it was.
///
/// Wiring: ``RunService`` appends here what it cannot send, sends a run's backlog before any newer output of that
/// run and before its result when a stream comes up (``take(_:)``, then ``remove(_:)`` once sent), and drops the
/// backlogs of runs its ledger no longer holds (``retain(_:)``). Of scheduled runs, only the latest keeps one: the
/// controller keeps only the latest scheduled run's output.
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

        /// Adds `newer`'s kept output after this one's, with its gap where it was.
        mutating func append(_ newer: Pending) {
            for segment in newer.buffer.head { buffer.append(segment.bytes, from: segment.stream) }
            buffer.skip(newer.droppedBytes)
            for segment in newer.buffer.tail { buffer.append(segment.bytes, from: segment.stream) }
        }
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
            merged.append(newer)
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
        let headBytes = entry.buffer.head.reduce(0) { $0 + $1.bytes.count }
        return [2] + OutputRecords.bigEndian(UInt64(bitPattern: entry.firstSequence), width: 8)
            + OutputRecords.bigEndian(UInt64(bitPattern: entry.droppedBytes), width: 8)
            + OutputRecords.bigEndian(UInt64(headBytes), width: 8)
            + OutputRecords.encode(entry.buffer.segments)
    }

    static func decode(_ bytes: [UInt8]) -> Pending? {
        guard bytes.count >= 17, bytes[0] == 1 || bytes[0] == 2 else { return nil }
        let isVersion1 = bytes[0] == 1
        guard isVersion1 || bytes.count >= 25 else { return nil }
        let (segments, isComplete) = OutputRecords.decode(bytes[(isVersion1 ? 17 : 25)...])
        guard isComplete else { return nil }
        let firstSequence = Int64(bitPattern: OutputRecords.integer(bytes[1..<9]))
        let dropped = Int64(bitPattern: OutputRecords.integer(bytes[9..<17]))
        // A buffer whose head holds the head that was kept (all of it in version 1), then the gap, then the tail.
        var buffer = OutputBuffer(limit: 2 * segments.reduce(0) { $0 + $1.bytes.count })
        guard !isVersion1 else {
            for segment in segments { buffer.append(segment.bytes, from: segment.stream) }
            return Pending(buffer: buffer, firstSequence: firstSequence, restoredDroppedBytes: dropped)
        }
        var headLeft = Int(clamping: OutputRecords.integer(bytes[17..<25]))
        var isGapPlaced = false
        for segment in segments {
            if headLeft <= 0 && !isGapPlaced {
                buffer.skip(dropped)
                isGapPlaced = true
            }
            buffer.append(segment.bytes, from: segment.stream)
            headLeft -= segment.bytes.count
        }
        if !isGapPlaced { buffer.skip(dropped) }
        return Pending(buffer: buffer, firstSequence: firstSequence)
    }
}
