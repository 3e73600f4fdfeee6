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
        // Acknowledged is still never started again.
        #expect(try restarted.begin(Self.request("a")) == .alreadyFinished(Self.result("a")))
        let again = try RunLedger(directory: directory.path, logger: logger)
        #expect(again.unacknowledgedResults.map(\.runUID) == ["b"])
        #expect(again.contains("a"))
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
