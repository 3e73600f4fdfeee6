import ArgumentParser
import Foundation
import Resources
import Testing

@testable import Client

/// `steady run`, `steady logs` and the RemoteRun summary: arguments and words, without a server.
@Suite struct RunCommandTests {
    /// The message `steady run ARGUMENTS` fails with, or nil when they parse.
    static func failure(_ arguments: [String]) -> String? {
        do {
            _ = try RunCommand.parse(arguments)
            return nil
        } catch {
            return RunCommand.message(for: error)
        }
    }

    @Test func argumentErrorsNameTheFlagToFix() {
        #expect(Self.failure([])?.contains("exactly one of --all, --runners a,b or -l key=value") == true)
        #expect(Self.failure(["--all", "--runners", "web-1"])?.contains("exactly one of") == true)
        #expect(
            Self.failure(["--runners", "web-1,,web-2"])?.contains("--runners web-1,,web-2: runner 2 is empty") == true)
        #expect(Self.failure(["--runners", "Web_1"])?.hasPrefix("--all, --runners or -l:") == true)
        #expect(Self.failure(["--all", "--batch-size", "0"])?.hasPrefix("--batch-size: must be at least 1") == true)
        #expect(Self.failure(["--all", "--batch-size", "half"])?.contains("--batch-size half: use a count") == true)
        #expect(Self.failure(["--all", "--max-errors", "150%"])?.contains("--max-errors 150%") == true)
        #expect(Self.failure(["--all", "--timeout", "soon"])?.contains("--timeout soon: not a duration") == true)
        #expect(
            Self.failure(["--all", "--delivery-timeout", "0s"])?.hasPrefix("--delivery-timeout: must be longer") == true
        )
        #expect(Self.failure(["--all", "--condition", "bad-one"])?.hasPrefix("--condition: invalid condition") == true)
        #expect(
            Self.failure(["--all", "--", "uptime"])?.contains(
                "the command after --: \"uptime\" is not an absolute path") == true)
        #expect(Self.failure(["--all", "--name", "Not_A_Name"])?.hasPrefix("--name Not_A_Name:") == true)
        #expect(Self.failure(["-l", "role in (web"])?.hasPrefix("-l role in (web:") == true)
        #expect(Self.failure(["--all"]) == nil)
    }

    @Test func theRunCarriesEveryFlag() throws {
        let command = try RunCommand.parse([
            "--runners", "web-1,web-2", "--condition", "force_inventory", "--condition", "quick", "--timeout", "5m",
            "--delivery-timeout", "30s", "--batch-size", "20%", "--max-errors", "1", "--keep-output", "--",
            "/usr/bin/uptime", "-p",
        ])
        let object = try command.makeObject(name: "nightly")
        #expect(object["kind"] == "RemoteRun")
        #expect(object["metadata"]?["name"] == "nightly")
        let spec = try #require(object["spec"])
        #expect(spec["target"] == ["runners": ["web-1", "web-2"]])
        #expect(spec["conditions"] == ["force_inventory", "quick"])
        #expect(spec["command"] == ["/usr/bin/uptime", "-p"])
        #expect(spec["batchSize"] == "20%")
        #expect(spec["maxErrors"] == 1)
        #expect(spec["keepOutput"] == true)
        #expect(spec["timeout"] == "5m")
        #expect(spec["deliveryTimeout"] == "30s")
        #expect(spec["asynchronous"] == nil)

        let selected = try RunCommand.parse(["-l", "role=web,tier!=db,!legacy"]).makeObject(name: "x")
        #expect(
            selected["spec"]?["target"] == [
                "runnerSelector": [
                    "matchLabels": ["role": "web"],
                    "matchExpressions": [
                        ["key": "tier", "operator": "NotIn", "values": ["db"]],
                        ["key": "legacy", "operator": "DoesNotExist"],
                    ],
                ]
            ])
    }

    @Test func generatedNamesAreValidAndDiffer() {
        let date = Date(timeIntervalSince1970: 1_800_000_000)
        let first = RunCommand.generatedName(now: date)
        #expect(first.hasPrefix("run-20270115-080000-"))
        #expect(Names.validateObjectName(first).isEmpty)
        #expect((0..<20).map { _ in RunCommand.generatedName(now: date) }.contains { $0 != first })
    }

    static func run(_ results: [JSONValue], failed reason: String? = nil) -> JSONValue {
        var status: JSONValue = ["results": .array(results)]
        if let reason {
            status["conditions"] = [["type": "Failed", "status": "True", "reason": .string(reason)]]
        }
        return ["status": status]
    }

    static func result(
        _ runner: String, _ phase: String, exitCode: Int64? = nil, signal: Int64? = nil, reason: String? = nil
    )
        -> JSONValue
    {
        var result: JSONValue = ["runner": .string(runner), "phase": .string(phase)]
        if let exitCode { result["exitCode"] = .int(exitCode) }
        if let signal { result["signal"] = .int(signal) }
        if let reason { result["reason"] = .string(reason) }
        return result
    }

    @Test func theSummaryLineCountsAndNamesWhatDidNotSucceed() {
        var results = (1...20).filter { $0 != 3 }.map { Self.result("web-\($0)", "Succeeded", exitCode: 0) }
        results.append(Self.result("web-3", "Failed", exitCode: 2))
        let mostly = Self.run(results)
        #expect(RemoteRunSummary.line(name: "run-x", mostly) == "run-x: 19/20 succeeded, 1 failed (web-3: exit 2)")
        #expect(!RemoteRunSummary.isSuccess(mostly))

        let bad = Self.run(
            [
                Self.result("a", "Succeeded", exitCode: 0), Self.result("b", "TimedOut", signal: 15),
                Self.result("c", "Unreachable", reason: "AgentLost"),
                Self.result("d", "Skipped", reason: "MaxErrorsExceeded"),
                Self.result("e", "Refused", reason: "ExecNotAllowed"),
            ], failed: "MaxErrorsExceeded")
        #expect(
            RemoteRunSummary.line(name: "r", bad)
                == "r: 1/5 succeeded, 1 timed out (b: signal 15), 1 unreachable (c: AgentLost), 1 refused "
                + "(e: ExecNotAllowed), 1 skipped (d: MaxErrorsExceeded); run Failed (MaxErrorsExceeded)")

        let many = Self.run((1...7).map { Self.result("w\($0)", "Failed", exitCode: 1) })
        #expect(
            RemoteRunSummary.line(name: "m", many).hasSuffix(
                "7 failed (w1: exit 1, w2: exit 1, w3: exit 1, w4: exit 1, w5: exit 1, ...)"))

        let all = Self.run([Self.result("a", "Succeeded", exitCode: 0), Self.result("b", "Succeeded", exitCode: 0)])
        #expect(RemoteRunSummary.isSuccess(all))
        #expect(RemoteRunSummary.line(name: "ok", all) == "ok: 2/2 succeeded")
        #expect(!RemoteRunSummary.isSuccess(Self.run([])))
        #expect(
            RemoteRunSummary.progress(Self.run([Self.result("a", "Running"), Self.result("b", "Succeeded")]))
                == "1 running, 1 succeeded of 2")
    }

    @Test func logsTakesOneRemoteRunOrRunner() throws {
        #expect(try LogsCommand.parse(["remoterun/nightly", "--runner", "web-1", "-f"]).target().1 == "nightly")
        #expect(try LogsCommand.parse(["rr", "nightly"]).target().1 == "nightly")
        // A runner's log is its latest scheduled run: no runner to pick; -f follows it while it goes.
        #expect(try LogsCommand.parse(["runner/web-1"]).target().0.kind == "Runner")
        #expect(try LogsCommand.parse(["runner/web-1", "-f"]).follow)
        #expect(throws: (any Error).self) { try LogsCommand.parse(["runner/web-1", "--runner", "web-1"]) }
        #expect(throws: (any Error).self) { try LogsCommand.parse(["route/x"]) }
        #expect(throws: (any Error).self) { try LogsCommand.parse(["remoterun/a", "remoterun/b"]) }
        #expect(throws: (any Error).self) { try LogsCommand.parse([]) }
    }

    @Test func waitingForCompleteFailsOnAFailedRun() {
        let complete = WaitCondition.condition(type: "Complete", status: "True")
        let failed = Self.run([], failed: "MaxErrorsExceeded")
        #expect(complete.failure(failed) == "Failed=True (MaxErrorsExceeded)")
        #expect(complete.failure(Self.run([])) == nil)
        #expect(WaitCondition.condition(type: "Ready", status: "True").failure(failed) == nil)
    }
}
