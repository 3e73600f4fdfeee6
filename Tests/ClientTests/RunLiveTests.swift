import ArgumentParser
import Foundation
import Reconciler
import Resources
import Synchronization
import Testing

@testable import Client

/// `steady run`, `steady logs` and `steady wait` on RemoteRuns against the real API server. No dispatcher runs
/// here: the tests write the results and output as the controller's dispatcher would.
@Suite(.timeLimit(.minutes(2))) struct RunLiveTests {
    /// What the follow printed.
    final class Printed: Sendable {
        let output = Mutex<[UInt8]>([])
        let progress = Mutex<[String]>([])
        var text: String { String(decoding: output.withLock { $0 }, as: UTF8.self) }
    }

    static func status(_ phases: [String: String], exitCodes: [String: Int64] = [:], failed: Bool = false) -> JSONValue
    {
        let results: [JSONValue] = phases.keys.sorted().map { runner in
            var result: JSONValue = ["runner": .string(runner), "phase": .string(phases[runner] ?? "")]
            if let code = exitCodes[runner] { result["exitCode"] = .int(code) }
            return result
        }
        var status: JSONValue = ["results": .array(results)]
        let isOver = phases.values.allSatisfy { $0 != "Pending" && $0 != "Running" }
        if isOver {
            status["phase"] = .string(failed ? "Failed" : "Succeeded")
            status["conditions"] = [
                [
                    "type": .string(failed ? "Failed" : "Complete"), "status": "True",
                    "reason": .string(failed ? "RunnersFailed" : "Complete"),
                    "message": "", "lastTransitionTime": "2030-01-01T00:00:00Z",
                ]
            ]
        }
        return ["status": status]
    }

    @Test func runFollowsOutputAndProgressAndEndsWithTheSummary() async throws {
        try await LiveServer.with { context in
            let client = context.client
            let command = try RunCommand.parse(["--runners", "web-1,web-2", "--name", "nightly"] + context.flags)
            let created = try await client.create(Kinds.remoteRun, try command.makeObject(name: "nightly"))
            let uid = try #require(created["metadata"]?["uid"]?.stringValue)
            let printed = Printed()
            async let final = RunCommand.follow(
                name: "nightly", client: client, output: { bytes in printed.output.withLock { $0 += bytes } },
                progress: { line in printed.progress.withLock { $0.append(line) } })

            // What the dispatcher does: results, output, then the end.
            _ = try await client.mergePatch(
                Kinds.remoteRun, name: "nightly", patch: Self.status(["web-1": "Running", "web-2": "Running"]),
                subresource: "status")
            context.runOutput.append(run: uid, runner: "web-1", stream: .stdout, bytes: Array("converged\n".utf8))
            context.runOutput.append(run: uid, runner: "web-2", stream: .stderr, bytes: Array("disk full\n".utf8))
            _ = try await client.mergePatch(
                Kinds.remoteRun, name: "nightly",
                patch: Self.status(
                    ["web-1": "Succeeded", "web-2": "Failed"], exitCodes: ["web-1": 0, "web-2": 2], failed: true),
                subresource: "status")

            let object = try await final
            #expect(
                RemoteRunSummary.line(name: "nightly", object)
                    == "nightly: 1/2 succeeded, 1 failed (web-2: exit 2); run Failed (RunnersFailed)")
            #expect(!RemoteRunSummary.isSuccess(object))
            let lines = Set(printed.text.split(separator: "\n").map(String.init))
            #expect(lines == ["web-1 | converged", "web-2 (stderr) | disk full"])
            #expect(printed.progress.withLock { $0 }.last == "1 succeeded, 1 failed of 2")

            // The output stays readable afterwards, one runner at a time.
            var text: [UInt8] = []
            for try await chunk in RunLog(client: client, name: "nightly", runner: "web-2") { text += chunk }
            #expect(String(decoding: text, as: UTF8.self) == "(stderr) | disk full\n")
            await #expect(throws: APIClientError.self) {
                for try await _ in RunLog(client: client, name: "nightly", runner: "db-1") {}
            }
        }
    }

    @Test func runEndsAtOnceWhenTheTargetResolvesToNoRunner() async throws {
        try await LiveServer.with { context in
            let client = context.client
            let command = try RunCommand.parse(["-l", "role=none"] + context.flags)
            _ = try await client.create(Kinds.remoteRun, try command.makeObject(name: "nowhere"))
            let notReady: JSONValue = [
                "status": [
                    "conditions": [
                        [
                            "type": "Ready", "status": "False", "reason": "NoMatchingRunners",
                            "message": "target.runnerSelector matches no runner",
                            "lastTransitionTime": "2030-01-01T00:00:00Z", "observedGeneration": 1,
                        ]
                    ]
                ]
            ]
            _ = try await client.mergePatch(Kinds.remoteRun, name: "nowhere", patch: notReady, subresource: "status")
            let error = await #expect(throws: CommandError.self) {
                _ = try await RunCommand.follow(name: "nowhere", client: client, output: { _ in }, progress: { _ in })
            }
            #expect(error?.message.contains("Ready=False (NoMatchingRunners)") == true)
        }
    }

    @Test func runAsyncCreatesTheRunAndReturns() async throws {
        try await LiveServer.with { context in
            let command = try RunCommand.parse(
                ["--all", "--async", "--name", "later", "--condition", "quick"] + context.flags)
            try await command.run()
            let object = try await context.client.get(Kinds.remoteRun, name: "later")
            #expect(object["spec"]?["target"] == ["all": true])
            #expect(object["spec"]?["asynchronous"] == true)
            #expect(object["spec"]?["conditions"] == ["quick"])
        }
    }

    @Test func waitForCompleteEndsWithAnErrorWhenTheRunFails() async throws {
        try await LiveServer.with { context in
            let client = context.client
            let command = try RunCommand.parse(["--runners", "web-1"] + context.flags)
            _ = try await client.create(Kinds.remoteRun, try command.makeObject(name: "doomed"))
            _ = try await client.create(Kinds.remoteRun, try command.makeObject(name: "fine"))
            _ = try await client.mergePatch(
                Kinds.remoteRun, name: "doomed", patch: Self.status(["web-1": "Failed"], failed: true),
                subresource: "status")
            _ = try await client.mergePatch(
                Kinds.remoteRun, name: "fine", patch: Self.status(["web-1": "Succeeded"]), subresource: "status")
            // A timeout far beyond the suite's time limit: only the Failed condition can end this wait in time.
            let failing = try WaitCommand.parse(
                ["--for=condition=Complete", "remoterun/doomed", "--timeout", "1h"] + context.flags)
            await #expect(throws: ExitCode.failure) { try await failing.run() }
            let met = try WaitCommand.parse(
                ["--for=condition=Complete", "remoterun/fine", "--timeout", "1h"] + context.flags)
            try await met.run()
        }
    }
}
