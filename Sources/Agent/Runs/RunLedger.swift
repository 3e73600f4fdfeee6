import Foundation
import Logging
import Resources

/// The runs this agent has taken, kept in its state directory (`runs.log`, 0600), so that a run UID starts at
/// most once across reconnects and restarts, and a result survives until the controller acknowledges it.
///
/// Each run UID is in one state:
/// - `started`: recorded before the process starts. Finding one when the ledger is loaded means the agent stopped
///   while it ran: its outcome is unknown, so it becomes `Failed` with reason `AgentRestarted` rather than run again;
/// - `finished`: the result is kept, and re-sent after every reconnect, until acknowledged;
/// - `acknowledged`: the controller stored the result; only the UID, the acknowledgement time and the phase are kept
///   (``AcknowledgedRuns``), for ``retention`` and at most ``maximumAcknowledged`` of them, so that a late or
///   repeated request still does not start it again. Memory stays bounded however many runs the agent has taken.
///
/// The file is a log (``RunJournal``): a header line, then one JSON line per change (`start`, `finish`, `ack`),
/// appended without rewriting what is there; it is rewritten whole (compacted) when it has grown to several times
/// what it holds. Appends are not flushed by the methods here: the caller awaits ``makeDurable()`` before it acts on
/// one (starts the process, reports the result). A line cut short at the end of the file (the agent stopped while
/// appending it, before anything acted on it) is dropped. A file that is not a ledger, or has a damaged line before
/// its end, is renamed `runs.log.corrupt-<time>`, the reason is logged, and the agent starts with an empty ledger:
/// a damaged file never stops the agent. A `runs.json` of an older agent is read once and replaced.
///
/// Wiring: on `RunRequest` the agent calls ``begin(_:now:)``, awaits ``makeDurable()``, and starts ``RunExecutor``
/// only on ``Admission/start``; it answers `RunAccepted` then. When the executor returns it calls ``finish(_:)``,
/// awaits ``makeDurable()`` and sends the `RunResult`. On each (re)connect it sends ``unacknowledgedResults`` again;
/// on `RunAcknowledge` it calls ``acknowledge(_:now:)``.
public struct RunLedger: Sendable {
    /// The file name inside the state directory.
    public static let fileName = "runs.log"
    /// The file of agents before the log: read once, then removed.
    public static let legacyFileName = "runs.json"
    /// How long an acknowledged run UID is remembered.
    public static let retention: TimeInterval = 7 * 24 * 3600
    /// The most acknowledged UIDs remembered; the oldest go first beyond it.
    public static let maximumAcknowledged = 10_000
    /// The log is compacted when it is larger than this many times what it held after the last compaction, and
    /// larger than ``minimumCompactionBytes``.
    static let compactionFactor = 4
    static let minimumCompactionBytes = 64 * 1024

    /// What ``begin(_:now:)`` decided.
    public enum Admission: Sendable, Equatable {
        /// New: recorded as started; start the process now.
        case start
        /// Already started and not finished: it runs (or ran) already; do not start it again.
        case alreadyStarted
        /// Already finished: report this result again instead. For a run already acknowledged, only its phase is
        /// known: the result says so (reason `AlreadyAcknowledged`).
        case alreadyFinished(RunResult)
    }

    enum State: String, Codable, Sendable {
        case started, finished
    }

    /// A run not yet acknowledged: all of it is kept.
    struct Entry: Sendable, Equatable {
        var runName: String
        var state: State
        /// Order of arrival, for ``unacknowledgedResults``.
        var order: Int
        var result: RunResult?
    }

    /// One line of the file.
    struct Record: Codable, Sendable {
        enum Operation: String, Codable, Sendable {
            /// The header: `version`.
            case ledger
            case start, finish, ack
            /// The latest scheduled run's result, kept across compactions for the Runner's `lastRun`.
            case scheduled
        }

        var op: Operation
        var version: Int?
        var uid: String?
        var name: String?
        /// Seconds since 1970.
        var at: Double?
        var phase: RemoteRunSpec.Phase?
        var result: RunResult?
    }

    /// The ledger's file.
    public let path: String
    /// Runs started or finished, not yet acknowledged.
    private(set) var entries: [String: Entry] = [:]
    /// Runs acknowledged: what refuses a second start.
    private(set) var acknowledged = AcknowledgedRuns()
    /// The newest result of a scheduled run, acknowledged or not (``latestScheduledResult``).
    private var latestScheduled: RunResult?
    private var nextOrder = 0
    /// The file's size after the last compaction.
    private var compactedSize = 0
    private let journal: RunJournal

    /// Loads the ledger of the state directory `directory`, or starts an empty one.
    ///
    /// A run found `started` is turned into a `Failed` result (reason `AgentRestarted`), kept until acknowledged.
    /// - Throws: ``AgentError`` only when the file cannot be written or set aside; a corrupt file is not an error.
    public init(directory: String, now: Date = Date(), logger: Logger) throws(AgentError) {
        path = "\(directory)/\(Self.fileName)"
        let legacyPath = "\(directory)/\(Self.legacyFileName)"
        let data = try PrivateFile.read(path)
        let legacy = data == nil ? try PrivateFile.read(legacyPath) : nil
        // Opened (and created when absent) before anything is read into the ledger; a file set aside below is
        // replaced by the compaction at the end.
        journal = try RunJournal(path: path)
        var needsRewrite = true
        if let data {
            needsRewrite = try load(Array(data), now: now, logger: logger)
        } else if let legacy {
            loadLegacy(legacy, path: legacyPath, now: now, logger: logger)
        }
        for (uid, entry) in entries where entry.state == .started {
            let result = RunResult(
                runUID: uid, phase: .failed, completionTime: Timestamp.format(now), reason: "AgentRestarted",
                message: "the agent stopped while this run was going; it was not started again")
            apply(finish: result, name: entry.runName)
            needsRewrite = true
        }
        if acknowledged.prune(now: now, retention: Self.retention, maximum: Self.maximumAcknowledged) {
            needsRewrite = true
        }
        if needsRewrite { try compact() }
        if FileManager.default.fileExists(atPath: legacyPath) { unlink(legacyPath) }
    }

    // MARK: Changes

    /// Records `request` as started when its UID is new (not yet flushed: await ``makeDurable()`` before starting).
    public mutating func begin(_ request: RunRequest, now: Date = Date()) throws(AgentError) -> Admission {
        if let entry = entries[request.runUID] {
            if let result = entry.result { return .alreadyFinished(result) }
            return .alreadyStarted
        }
        if let done = acknowledged[request.runUID] {
            return .alreadyFinished(
                RunResult(
                    runUID: request.runUID, phase: done.phase,
                    completionTime: Timestamp.format(Date(timeIntervalSince1970: Double(done.acknowledgedAt))),
                    reason: "AlreadyAcknowledged",
                    message: "this run ended and its result was acknowledged by the controller; the agent keeps only "
                        + "its phase and does not start it again"))
        }
        try append(Record(op: .start, uid: request.runUID, name: request.runName, at: now.timeIntervalSince1970))
        entries[request.runUID] = Entry(runName: request.runName, state: .started, order: nextOrder)
        nextOrder += 1
        try compactIfLarge()
        return .start
    }

    /// Records a run's result (a finished run, or a refusal), to be sent until acknowledged (not yet flushed: await
    /// ``makeDurable()`` before reporting it).
    public mutating func finish(_ result: RunResult, runName: String = "", now: Date = Date()) throws(AgentError) {
        guard acknowledged[result.runUID] == nil else { return }
        let name = entries[result.runUID]?.runName ?? runName
        try append(Record(op: .finish, uid: result.runUID, name: name, at: now.timeIntervalSince1970, result: result))
        apply(finish: result, name: name)
        try compactIfLarge()
    }

    /// The controller stored the result of `runUID`: stop re-sending it, and keep only what refuses a second start.
    /// Not flushed: losing it re-sends the result once more, which the controller acknowledges again.
    public mutating func acknowledge(_ runUID: String, now: Date = Date()) throws(AgentError) {
        guard let entry = entries[runUID], entry.state == .finished, let phase = entry.result?.phase else { return }
        try append(Record(op: .ack, uid: runUID, at: now.timeIntervalSince1970, phase: phase))
        entries[runUID] = nil
        acknowledged.insert(runUID, at: now, phase: phase)
        // The file forgets them too, so that a restart remembers what this process does.
        if acknowledged.prune(now: now, retention: Self.retention, maximum: Self.maximumAcknowledged) {
            try compact()
        } else {
            try compactIfLarge()
        }
    }

    /// Returns once every change recorded so far is on disk (one flush for all the callers waiting at once).
    public func makeDurable() async throws(AgentError) {
        try await journal.makeDurable()
    }

    /// Forgets a start that could not be made durable (the run was not started), so that a repeated request may
    /// try again.
    public mutating func abandon(_ runUID: String) {
        if entries[runUID]?.state == .started { entries[runUID] = nil }
    }

    // MARK: Reading

    /// Results finished and not yet acknowledged, oldest first: what to send after a (re)connect.
    public var unacknowledgedResults: [RunResult] {
        entries.values.filter { $0.state == .finished }.sorted { $0.order < $1.order }.compactMap(\.result)
    }

    /// Runs recorded as started and not finished (in this process's life: the ones running now).
    public var runningUIDs: [String] { entries.filter { $0.value.state == .started }.map(\.key).sorted() }

    /// The newest result of a scheduled run (UID starting `RunProtocol.scheduledRunUIDPrefix`), acknowledged or not.
    public var latestScheduledResult: RunResult? { latestScheduled }

    /// Whether `runUID` was ever taken (and is still remembered).
    public func contains(_ runUID: String) -> Bool { entries[runUID] != nil || acknowledged[runUID] != nil }

    /// How many acknowledged runs are remembered.
    public var acknowledgedCount: Int { acknowledged.count }

    // MARK: File

    private func append(_ record: Record) throws(AgentError) {
        try journal.append(Self.line(record))
    }

    /// Compacts once the log has grown to several times what it held after the last compaction (called after a
    /// change is in memory, so that the new file holds it).
    private mutating func compactIfLarge() throws(AgentError) {
        if journal.size > max(Self.minimumCompactionBytes, Self.compactionFactor * compactedSize) { try compact() }
    }

    private mutating func apply(finish result: RunResult, name: String) {
        if result.runUID.hasPrefix(RunProtocol.scheduledRunUIDPrefix) { latestScheduled = result }
        if entries[result.runUID] == nil {
            entries[result.runUID] = Entry(runName: name, state: .finished, order: nextOrder)
            nextOrder += 1
        }
        entries[result.runUID]?.state = .finished
        entries[result.runUID]?.result = result
    }

    /// Rewrites the file with only what the ledger holds now.
    private mutating func compact() throws(AgentError) {
        var bytes = Self.line(Record(op: .ledger, version: 2))
        if let latestScheduled { bytes += Self.line(Record(op: .scheduled, result: latestScheduled)) }
        for (uid, entry) in acknowledged.all {
            bytes += Self.line(Record(op: .ack, uid: uid, at: Double(entry.acknowledgedAt), phase: entry.phase))
        }
        for (uid, entry) in entries.sorted(by: { $0.value.order < $1.value.order }) {
            bytes += Self.line(Record(op: .start, uid: uid, name: entry.runName))
            if let result = entry.result { bytes += Self.line(Record(op: .finish, uid: uid, result: result)) }
        }
        try journal.replace(with: bytes)
        compactedSize = bytes.count
    }

    static func line(_ record: Record) -> [UInt8] {
        // A record is strings, numbers and a result: it always encodes.
        var bytes = (try? JSONValue(encoding: record).jsonData()).map(Array.init) ?? []
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Replays the log `bytes`; returns whether the file must be rewritten (it was damaged at its end). A file
    /// damaged elsewhere is set aside.
    private mutating func load(_ bytes: [UInt8], now: Date, logger: Logger) throws(AgentError) -> Bool {
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        var records: [Record] = []
        var damage: String?
        var isTornAtEnd = false
        for (index, line) in lines.enumerated() where !line.isEmpty {
            guard let record = try? JSONValue.parse(Data(line)).decode(as: Record.self) else {
                // The last line without its newline: an append cut short, which nothing acted on.
                if index == lines.count - 1 {
                    isTornAtEnd = true
                } else {
                    damage = "line \(index + 1) is not a ledger record"
                }
                break
            }
            if index == 0, record.op != .ledger || record.version != 2 {
                damage = "it does not start with a version 2 ledger header"
                break
            }
            records.append(record)
        }
        if records.isEmpty && damage == nil { damage = "it holds no ledger header" }
        if let damage {
            let aside = try PrivateFile.setAside(path, now: now)
            logger.warning(
                "the run ledger could not be read; it was set aside and the agent starts with an empty one",
                metadata: ["steady.file": "\(path)", "steady.setAside": "\(aside)", "steady.reason": "\(damage)"])
            return true
        }
        for record in records.dropFirst() { replay(record) }
        if isTornAtEnd {
            logger.notice(
                "the run ledger ended with a record cut short (the agent stopped while writing it); it was dropped",
                metadata: ["steady.file": "\(path)"])
        }
        compactedSize = bytes.count
        return isTornAtEnd
    }

    private mutating func replay(_ record: Record) {
        switch record.op {
        case .ledger:
            break
        case .start:
            guard let uid = record.uid, entries[uid] == nil, acknowledged[uid] == nil else { return }
            entries[uid] = Entry(runName: record.name ?? "", state: .started, order: nextOrder)
            nextOrder += 1
        case .finish:
            guard let result = record.result, acknowledged[result.runUID] == nil else { return }
            apply(finish: result, name: record.name ?? entries[result.runUID]?.runName ?? "")
        case .ack:
            guard let uid = record.uid else { return }
            let phase = record.phase ?? entries[uid]?.result?.phase ?? .succeeded
            entries[uid] = nil
            acknowledged.insert(uid, at: Date(timeIntervalSince1970: record.at ?? 0), phase: phase)
        case .scheduled:
            latestScheduled = record.result
        }
    }

    /// The `runs.json` of agents before the log: `{"version": 1, "runs": {uid: entry}}`.
    private struct Legacy: Codable {
        struct Entry: Codable {
            var runName: String
            var state: String
            var recordedTime: String
            var result: RunResult?
        }

        var version: Int
        var runs: [String: Entry]
    }

    private mutating func loadLegacy(_ data: Data, path legacyPath: String, now: Date, logger: Logger) {
        guard let legacy = try? JSONValue.parse(data).decode(as: Legacy.self), legacy.version == 1 else {
            let aside = try? PrivateFile.setAside(legacyPath, now: now)
            logger.warning(
                "the run ledger could not be read; it was set aside and the agent starts with an empty one",
                metadata: ["steady.file": "\(legacyPath)", "steady.setAside": "\(aside ?? "-")"])
            return
        }
        let ordered = legacy.runs.sorted { ($0.value.recordedTime, $0.key) < ($1.value.recordedTime, $1.key) }
        for (uid, entry) in ordered {
            if let result = entry.result, uid.hasPrefix(RunProtocol.scheduledRunUIDPrefix) { latestScheduled = result }
            if entry.state == "acknowledged" {
                let time = Timestamp.parse(entry.recordedTime) ?? now
                acknowledged.insert(uid, at: time, phase: entry.result?.phase ?? .succeeded)
            } else {
                replay(Record(op: .start, uid: uid, name: entry.runName))
                if let result = entry.result { replay(Record(op: .finish, uid: uid, name: entry.runName, result: result)) }
            }
        }
    }
}
