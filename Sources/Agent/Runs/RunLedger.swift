import Foundation
import Logging
import Resources

/// The runs this agent has taken, kept in its state directory (`runs.json`, 0600), so that a run UID starts at
/// most once across reconnects and restarts, and a result survives until the controller acknowledges it.
///
/// Each run UID is in one state:
/// - `started`: written (and flushed) before the process starts. Finding one when the ledger is loaded means the
///   agent stopped while it ran: its outcome is unknown, so it becomes `Failed` with reason `AgentRestarted` rather
///   than run again;
/// - `finished`: the result is kept, and re-sent after every reconnect, until acknowledged;
/// - `acknowledged`: the controller stored the result; the UID is remembered for ``retention`` so a late or
///   repeated request still does not start it again.
///
/// A ledger file that cannot be read is renamed `runs.json.corrupt-<time>`, the reason is logged, and the agent
/// starts with an empty ledger: a damaged file never stops the agent.
///
/// Wiring: on `RunRequest` the agent calls ``begin(_:now:)`` and starts ``RunExecutor`` only on
/// ``Admission/start``; it answers `RunAccepted` when the entry is written. When the executor returns it calls
/// ``finish(_:)`` and sends the `RunResult`. On each (re)connect it sends ``unacknowledgedResults`` again; on
/// `RunAcknowledge` it calls ``acknowledge(_:now:)``.
public struct RunLedger: Sendable {
    /// The file name inside the state directory.
    public static let fileName = "runs.json"
    /// How long an acknowledged run UID is remembered.
    public static let retention: TimeInterval = 7 * 24 * 3600
    /// The most acknowledged UIDs remembered; the oldest go first beyond it.
    public static let maximumAcknowledged = 10_000

    /// What ``begin(_:now:)`` decided.
    public enum Admission: Sendable, Equatable {
        /// New: recorded as started; start the process now.
        case start
        /// Already started and not finished: it runs (or ran) already; do not start it again.
        case alreadyStarted
        /// Already finished: report this result again instead.
        case alreadyFinished(RunResult)
    }

    enum State: String, Codable, Sendable {
        case started, finished, acknowledged
    }

    struct Entry: Codable, Sendable, Equatable {
        var runName: String
        var state: State
        /// When the entry was created (RFC 3339), for ordering and retention.
        var recordedTime: String
        var result: RunResult?
    }

    struct Stored: Codable {
        var version: Int
        var runs: [String: Entry]
    }

    /// The ledger file.
    public let path: String
    private(set) var entries: [String: Entry]

    /// Loads the ledger of the state directory `directory`, or starts an empty one.
    ///
    /// A run found `started` is turned into a `Failed` result (reason `AgentRestarted`), kept until acknowledged.
    /// - Throws: ``AgentError`` only when the file cannot be written or set aside; a corrupt file is not an error.
    public init(directory: String, now: Date = Date(), logger: Logger) throws(AgentError) {
        path = "\(directory)/\(Self.fileName)"
        entries = [:]
        var isChanged = false
        if let data = try PrivateFile.read(path) {
            do {
                let stored = try JSONValue.parse(data).decode(as: Stored.self)
                guard stored.version == 1 else {
                    throw AgentError(code: .storage, message: "unknown version \(stored.version)")
                }
                entries = stored.runs
            } catch {
                let aside = try PrivateFile.setAside(path, now: now)
                logger.warning(
                    "the run ledger could not be read; it was set aside and the agent starts with an empty one",
                    metadata: ["steady.file": "\(path)", "steady.setAside": "\(aside)", "steady.reason": "\(error)"])
                isChanged = true
            }
        }
        for (uid, entry) in entries where entry.state == .started {
            entries[uid]?.state = .finished
            entries[uid]?.result = RunResult(
                runUID: uid, phase: .failed, completionTime: Timestamp.format(now), reason: "AgentRestarted",
                message: "the agent stopped while this run was going; it was not started again")
            isChanged = true
        }
        if isChanged { try save() }
    }

    /// Records `request` as started when its UID is new.
    public mutating func begin(_ request: RunRequest, now: Date = Date()) throws(AgentError) -> Admission {
        if let entry = entries[request.runUID] {
            if let result = entry.result { return .alreadyFinished(result) }
            return .alreadyStarted
        }
        entries[request.runUID] = Entry(runName: request.runName, state: .started, recordedTime: Timestamp.format(now))
        prune(now: now)
        try save()
        return .start
    }

    /// Records a run's result (a finished run, or a refusal), to be sent until acknowledged.
    public mutating func finish(_ result: RunResult, runName: String = "", now: Date = Date()) throws(AgentError) {
        var entry =
            entries[result.runUID] ?? Entry(runName: runName, state: .started, recordedTime: Timestamp.format(now))
        guard entry.state != .acknowledged else { return }
        entry.state = .finished
        entry.result = result
        entries[result.runUID] = entry
        try save()
    }

    /// The controller stored the result of `runUID`: stop re-sending it.
    public mutating func acknowledge(_ runUID: String, now: Date = Date()) throws(AgentError) {
        guard entries[runUID]?.state == .finished else { return }
        entries[runUID]?.state = .acknowledged
        prune(now: now)
        try save()
    }

    /// Results finished and not yet acknowledged, oldest first: what to send after a (re)connect.
    public var unacknowledgedResults: [RunResult] {
        entries.filter { $0.value.state == .finished }.sorted {
            ($0.value.recordedTime, $0.key) < ($1.value.recordedTime, $1.key)
        }
        .compactMap(\.value.result)
    }

    /// Runs recorded as started and not finished (in this process's life: the ones running now).
    public var runningUIDs: [String] { entries.filter { $0.value.state == .started }.map(\.key).sorted() }

    /// The newest result, acknowledged or not, of the runs whose UID starts with `prefix` (scheduled runs).
    public func latestResult(uidPrefix prefix: String) -> RunResult? {
        entries.filter { $0.key.hasPrefix(prefix) && $0.value.result != nil }
            .max { ($0.value.recordedTime, $0.key) < ($1.value.recordedTime, $1.key) }?.value.result
    }

    /// Whether `runUID` was ever taken.
    public func contains(_ runUID: String) -> Bool { entries[runUID] != nil }

    private mutating func prune(now: Date) {
        let acknowledged = entries.filter { $0.value.state == .acknowledged }
        var expired = acknowledged.filter {
            (Timestamp.parse($0.value.recordedTime) ?? .distantPast) < now.addingTimeInterval(-Self.retention)
        }.map(\.key)
        let excess = acknowledged.count - expired.count - Self.maximumAcknowledged
        if excess > 0 {
            let expiredSet = Set(expired)
            expired += acknowledged.filter { !expiredSet.contains($0.key) }
                .sorted { ($0.value.recordedTime, $0.key) < ($1.value.recordedTime, $1.key) }.prefix(excess).map(\.key)
        }
        for uid in expired { entries[uid] = nil }
    }

    private func save() throws(AgentError) {
        let bytes: Data
        do {
            bytes = try JSONValue(encoding: Stored(version: 1, runs: entries)).jsonData()
        } catch {
            throw AgentError(code: .storage, message: "cannot encode the run ledger", underlying: error)
        }
        try PrivateFile.write(Array(bytes), to: path)
    }
}
