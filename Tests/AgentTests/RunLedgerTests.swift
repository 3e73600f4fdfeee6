import Agent
import Foundation
import Logging
import Resources
import SteadyTesting
import Testing

/// The agent's run ledger: one start per run UID across restarts, results kept until acknowledged, a corrupt file
/// set aside.
@Suite(.timeLimit(.minutes(5))) struct RunLedgerTests {
    var logger: Logger {
        var logger = Logger(label: "run-ledger-test")
        logger.logLevel = .critical
        return logger
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func request(_ uid: String) -> RunRequest { RunRequest(runUID: uid, runName: "inventory") }

    static func result(_ uid: String, _ phase: RemoteRunSpec.Phase = .succeeded) -> RunResult {
        RunResult(
            runUID: uid, phase: phase, exitCode: 0, startTime: "2027-01-15T08:00:00Z",
            completionTime: "2027-01-15T08:00:01Z")
    }

    @Test func aRunStartsOnceAcrossRestarts() throws {
        let directory = try TemporaryDirectory(prefix: "steady-ledger")
        defer { directory.remove() }
        var ledger = try RunLedger(directory: directory.path, logger: logger)
        #expect(try ledger.begin(Self.request("a")) == .start)
        #expect(try ledger.begin(Self.request("a")) == .alreadyStarted)
        try ledger.finish(Self.result("a"))
        #expect(try ledger.begin(Self.request("a")) == .alreadyFinished(Self.result("a")))

        // A new ledger on the same directory, as after an agent restart.
        var restarted = try RunLedger(directory: directory.path, logger: logger)
        #expect(try restarted.begin(Self.request("a")) == .alreadyFinished(Self.result("a")))
        #expect(try restarted.begin(Self.request("b")) == .start)
        #expect(restarted.unacknowledgedResults == [Self.result("a")])
    }

    @Test func aRunInterruptedByARestartIsFailedNotStartedAgain() throws {
        let directory = try TemporaryDirectory(prefix: "steady-ledger")
        defer { directory.remove() }
        var ledger = try RunLedger(directory: directory.path, logger: logger)
        #expect(try ledger.begin(Self.request("running")) == .start)
        #expect(ledger.runningUIDs == ["running"])

        var restarted = try RunLedger(directory: directory.path, now: Self.now, logger: logger)
        guard case .alreadyFinished(let result) = try restarted.begin(Self.request("running")) else {
            Issue.record("an interrupted run could start again")
            return
        }
        #expect(result.phase == .failed)
        #expect(result.reason == "AgentRestarted")
        #expect(restarted.unacknowledgedResults.map(\.runUID) == ["running"])
        #expect(restarted.runningUIDs.isEmpty)
    }

    @Test func aResultIsKeptUntilAcknowledged() throws {
        let directory = try TemporaryDirectory(prefix: "steady-ledger")
        defer { directory.remove() }
        var ledger = try RunLedger(directory: directory.path, logger: logger)
        _ = try ledger.begin(Self.request("a"), now: Self.now)
        _ = try ledger.begin(Self.request("b"), now: Self.now.addingTimeInterval(1))
        try ledger.finish(Self.result("b", .failed))
        try ledger.finish(Self.result("a"))
        #expect(ledger.unacknowledgedResults.map(\.runUID) == ["a", "b"])

        // Disconnected: the results survive a restart, still unacknowledged.
        var restarted = try RunLedger(directory: directory.path, logger: logger)
        #expect(restarted.unacknowledgedResults.map(\.runUID) == ["a", "b"])
        try restarted.acknowledge("a")
        #expect(restarted.unacknowledgedResults.map(\.runUID) == ["b"])
        // Acknowledged is still never started again; only its phase is kept.
        guard case .alreadyFinished(let kept) = try restarted.begin(Self.request("a")) else {
            Issue.record("an acknowledged run could start again")
            return
        }
        #expect(kept.phase == .succeeded && kept.reason == "AlreadyAcknowledged" && kept.exitCode == nil)
        let again = try RunLedger(directory: directory.path, logger: logger)
        #expect(again.unacknowledgedResults.map(\.runUID) == ["b"])
        #expect(again.contains("a"))
    }

    @Test func acknowledgedRunsAreBoundedInCountAndAge() throws {
        let directory = try TemporaryDirectory(prefix: "steady-ledger")
        defer { directory.remove() }
        var ledger = try RunLedger(directory: directory.path, logger: logger)
        let total = RunLedger.maximumAcknowledged + 1_000
        let uids = (0..<total).map { index in
            // Kubernetes UIDs (kept as 16 bytes) and others (kept as text).
            index.isMultiple(of: 2) ? UUID().uuidString.lowercased() : "run-\(index)"
        }
        for (index, uid) in uids.enumerated() {
            let time = Self.now.addingTimeInterval(Double(index))
            #expect(try ledger.begin(Self.request(uid), now: time) == .start)
            try ledger.finish(Self.result(uid), now: time)
            try ledger.acknowledge(uid, now: time)
        }
        #expect(ledger.acknowledgedCount <= RunLedger.maximumAcknowledged)
        #expect(ledger.unacknowledgedResults.isEmpty && ledger.runningUIDs.isEmpty)
        // The newest are still refused; the oldest are forgotten.
        #expect(ledger.contains(uids[total - 1]) && ledger.contains(uids[total - 2]))
        #expect(try ledger.begin(Self.request(uids[total - 2])) != .start)
        #expect(!ledger.contains(uids[0]))
        // The file holds no more than the ledger: compacted, about a line per remembered run.
        let size = try FileManager.default.attributesOfItem(atPath: ledger.path)[.size] as? Int ?? 0
        #expect(size < RunLedger.maximumAcknowledged * 120 * 4, "\(size) bytes")
        let reloaded = try RunLedger(directory: directory.path, now: Self.now.addingTimeInterval(Double(total)), logger: logger)
        #expect(reloaded.acknowledgedCount == ledger.acknowledgedCount)
        #expect(reloaded.contains(uids[total - 1]) && !reloaded.contains(uids[0]))

        // A week later, they are all forgotten.
        var later = reloaded
        let week = Self.now.addingTimeInterval(RunLedger.retention + Double(total) + 1)
        _ = try later.begin(Self.request("fresh"), now: week)
        try later.finish(Self.result("fresh"), now: week)
        try later.acknowledge("fresh", now: week)
        #expect(later.acknowledgedCount == 1 && later.contains("fresh") && !later.contains(uids[total - 1]))
    }

    @Test func changesAreAppendedNotRewritten() throws {
        let directory = try TemporaryDirectory(prefix: "steady-ledger")
        defer { directory.remove() }
        var ledger = try RunLedger(directory: directory.path, logger: logger)
        func file() throws -> (inode: Int, size: Int) {
            let attributes = try FileManager.default.attributesOfItem(atPath: ledger.path)
            return ((attributes[.systemFileNumber] as? Int) ?? 0, (attributes[.size] as? Int) ?? 0)
        }
        let before = try file()
        _ = try ledger.begin(Self.request("a"))
        let started = try file()
        try ledger.finish(Self.result("a"))
        try ledger.acknowledge("a")
        let after = try file()
        // The same file, grown by a line per change.
        #expect(started.inode == before.inode && after.inode == before.inode)
        #expect(before.size < started.size && started.size < after.size)
        let lines = try String(contentsOfFile: ledger.path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4, "\(lines)")
    }

    @Test func runsRecordedAcrossCompactionsAreAllKept() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-ledger")
        defer { directory.remove() }
        var ledger = try RunLedger(directory: directory.path, logger: logger)
        // Enough starts for the log to be compacted more than once, each one made durable as the agent does.
        let uids = (0..<3_000).map { "run-\($0)" }
        for uid in uids {
            #expect(try ledger.begin(Self.request(uid)) == .start)
            if uid.hasSuffix("7") { try await ledger.makeDurable() }
        }
        try await ledger.makeDurable()
        let size = try FileManager.default.attributesOfItem(atPath: ledger.path)[.size] as? Int ?? 0
        // Compacted: smaller than the 3,000 appended lines (about 80 bytes each) plus a header.
        #expect(size < 3_000 * 80, "\(size) bytes")
        let restarted = try RunLedger(directory: directory.path, logger: logger)
        #expect(Set(restarted.unacknowledgedResults.map(\.runUID)) == Set(uids))
    }

    @Test func aRecordCutShortAtTheEndIsDroppedAndTheRestKept() throws {
        let directory = try TemporaryDirectory(prefix: "steady-ledger")
        defer { directory.remove() }
        var ledger = try RunLedger(directory: directory.path, logger: logger)
        _ = try ledger.begin(Self.request("a"))
        try ledger.finish(Self.result("a"))
        // The agent stopped while appending the start of "b".
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: ledger.path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"op":"start","uid":"b","na"#.utf8))
        try handle.close()

        var restarted = try RunLedger(directory: directory.path, now: Self.now, logger: logger)
        #expect(restarted.unacknowledgedResults == [Self.result("a")])
        #expect(!restarted.contains("b"))
        #expect(try restarted.begin(Self.request("b")) == .start)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(!names.contains { $0.contains(".corrupt-") }, "\(names)")
        #expect(try RunLedger(directory: directory.path, logger: logger).contains("b"))
    }

    @Test func theLedgerOfAnOlderAgentIsReadAndReplaced() throws {
        let directory = try TemporaryDirectory(prefix: "steady-ledger")
        defer { directory.remove() }
        let legacy = """
            {"version": 1, "runs": {
              "done": {"runName": "x", "state": "acknowledged", "recordedTime": "2027-01-15T08:00:00Z",
                       "result": {"runUID": "done", "phase": "Failed", "completionTime": "2027-01-15T08:00:01Z",
                                  "outputBytes": 0, "outputTruncated": false}},
              "waiting": {"runName": "x", "state": "finished", "recordedTime": "2027-01-15T08:00:02Z",
                          "result": {"runUID": "waiting", "phase": "Succeeded",
                                     "completionTime": "2027-01-15T08:00:03Z", "outputBytes": 3,
                                     "outputTruncated": false}}}}
            """
        try directory.write(legacy, to: RunLedger.legacyFileName)
        var ledger = try RunLedger(directory: directory.path, now: Self.now, logger: logger)
        #expect(ledger.unacknowledgedResults.map(\.runUID) == ["waiting"])
        guard case .alreadyFinished(let done) = try ledger.begin(Self.request("done")) else {
            Issue.record("an acknowledged run of the old ledger could start again")
            return
        }
        #expect(done.phase == .failed)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(names.contains(RunLedger.fileName) && !names.contains(RunLedger.legacyFileName), "\(names)")
    }

    @Test func aCorruptLedgerIsSetAsideAndTheAgentStartsEmpty() throws {
        let directory = try TemporaryDirectory(prefix: "steady-ledger")
        defer { directory.remove() }
        try directory.write("{\"version\": 1, \"runs\": {\"a\": ", to: RunLedger.fileName)
        var ledger = try RunLedger(directory: directory.path, now: Self.now, logger: logger)
        #expect(ledger.unacknowledgedResults.isEmpty)
        #expect(try ledger.begin(Self.request("a")) == .start)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(names.contains("\(RunLedger.fileName).corrupt-1800000000"))
        #expect(names.contains(RunLedger.fileName))
        // The fresh ledger is valid and private.
        let reloaded = try RunLedger(directory: directory.path, logger: logger)
        #expect(reloaded.runningUIDs.isEmpty && reloaded.unacknowledgedResults.map(\.runUID) == ["a"])
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.file(RunLedger.fileName).path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func aLedgerOfAnotherShapeIsSetAsideToo() throws {
        let directory = try TemporaryDirectory(prefix: "steady-ledger")
        defer { directory.remove() }
        try directory.write("{\"version\": 9, \"runs\": {}}", to: RunLedger.fileName)
        _ = try RunLedger(directory: directory.path, now: Self.now, logger: logger)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(names.contains("\(RunLedger.fileName).corrupt-1800000000"))
    }
}
