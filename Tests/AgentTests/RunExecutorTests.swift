import Agent
import Foundation
import Resources
import SteadyTesting
import Synchronization
import Testing

/// Real processes through `RunExecutor`: exit codes, streams, environment, timeouts with escalation, cancel,
/// refusal. Assertions are about behaviour, never about how long anything took.
@Suite(.timeLimit(.minutes(5))) struct RunExecutorTests {
    static func executor(runCommand: [String]? = nil, allowsExec: Bool = true) -> RunExecutor {
        RunExecutor(
            configuration: .init(
                runner: "web-1", runCommand: runCommand, allowsExec: allowsExec, killGracePeriod: .milliseconds(300)))
    }

    static func request(
        _ command: [String]?, uid: String = UUID().uuidString, timeout: Int64? = nil, maxOutputBytes: Int = 1024 * 1024
    ) -> RunRequest {
        RunRequest(
            runUID: uid, runName: "inventory", conditions: ["force_inventory", "quick"], command: command,
            timeoutMilliseconds: timeout, maxOutputBytes: maxOutputBytes)
    }

    /// What the callbacks saw.
    final class Recorder: Sendable {
        let chunks = Mutex<[(RunOutputStream, [UInt8])]>([])
        let starts = Mutex<Int>(0)

        func bytes(_ stream: RunOutputStream) -> String {
            String(decoding: chunks.withLock { $0.filter { $0.0 == stream }.flatMap(\.1) }, as: UTF8.self)
        }
    }

    func run(
        _ executor: RunExecutor, _ request: RunRequest, cancellation: RunCancellation = RunCancellation()
    )
        async -> (RunExecutor.Outcome, Recorder)
    {
        let recorder = Recorder()
        let outcome = await executor.run(
            request, cancellation: cancellation, onStart: { _ in recorder.starts.withLock { $0 += 1 } },
            onOutput: { stream, bytes in recorder.chunks.withLock { $0.append((stream, bytes)) } })
        return (outcome, recorder)
    }

    @Test func echoSucceedsWithItsOutput() async {
        let request = Self.request(["/bin/echo", "hello", "world"])
        let (outcome, recorder) = await run(Self.executor(), request)
        #expect(outcome.result.phase == .succeeded)
        #expect(outcome.result.exitCode == 0)
        #expect(outcome.result.signal == nil)
        #expect(outcome.result.runUID == request.runUID)
        #expect(outcome.result.startTime != nil)
        #expect(outcome.result.outputBytes == 12)
        #expect(outcome.result.outputTruncated == false)
        #expect(recorder.bytes(.stdout) == "hello world\n")
        #expect(recorder.bytes(.stderr) == "")
        #expect(recorder.starts.withLock { $0 } == 1)
        #expect(outcome.output.bytes(of: .stdout) == Array("hello world\n".utf8))
    }

    @Test func stdoutAndStderrStayApartAndANonZeroExitFails() async {
        let script = "echo to-out; echo to-err >&2; echo more-out; exit 3"
        let (outcome, recorder) = await run(Self.executor(), Self.request(["/bin/sh", "-c", script]))
        #expect(outcome.result.phase == .failed)
        #expect(outcome.result.exitCode == 3)
        #expect(outcome.result.reason == "NonZeroExit")
        #expect(recorder.bytes(.stdout) == "to-out\nmore-out\n")
        #expect(recorder.bytes(.stderr) == "to-err\n")
        #expect(outcome.output.bytes(of: .stderr) == Array("to-err\n".utf8))
        #expect(outcome.result.outputBytes == 23)
    }

    @Test func theProcessGetsItsEnvironmentAndEmptyInputAndItsOwnGroup() async {
        // `read` gets end of file at once on empty input; the process leads its own group and session.
        let script = """
            echo "$STEADY_RUN_NAME|$STEADY_RUNNER|$STEADY_RUN_CONDITIONS"
            if read line; then echo "read $line"; else echo eof; fi
            [ "$(cut -d' ' -f5,6 /proc/$$/stat)" = "$$ $$" ] && echo own-group
            """
        let (outcome, recorder) = await run(Self.executor(), Self.request(["/bin/sh", "-c", script]))
        #expect(outcome.result.phase == .succeeded)
        #expect(recorder.bytes(.stdout) == "inventory|web-1|force_inventory,quick\neof\nown-group\n")
    }

    @Test func theAgentsRunCommandRunsWhenNoCommandIsGiven() async {
        let executor = Self.executor(
            runCommand: ["/bin/sh", "-c", "echo agent-command $STEADY_RUN_CONDITIONS"], allowsExec: false)
        let (outcome, recorder) = await run(executor, Self.request(nil))
        #expect(outcome.result.phase == .succeeded)
        #expect(recorder.bytes(.stdout) == "agent-command force_inventory,quick\n")
    }

    @Test func anExplicitCommandIsRefusedWithoutAllowExecAndNothingRuns() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-runs")
        defer { directory.remove() }
        let marker = directory.path + "/ran"
        let executor = Self.executor(runCommand: ["/bin/true"], allowsExec: false)
        let request = Self.request(["/usr/bin/touch", marker])
        guard case .refused(let refusal) = executor.admit(request) else {
            Issue.record("an explicit command was admitted without --allow-exec")
            return
        }
        #expect(refusal.reason == .execNotAllowed)
        let (outcome, recorder) = await run(executor, request)
        #expect(outcome.result.phase == .refused)
        #expect(outcome.result.reason == "ExecNotAllowed")
        #expect(outcome.result.startTime == nil)
        #expect(recorder.starts.withLock { $0 } == 0)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test func noRunCommandAndNoCommandIsRefused() async {
        let (outcome, _) = await run(Self.executor(runCommand: nil), Self.request(nil))
        #expect(outcome.result.phase == .refused)
        #expect(outcome.result.reason == "NoRunCommand")
    }

    @Test func aMissingProgramFailsToStart() async {
        let (outcome, recorder) = await run(Self.executor(), Self.request(["/nonexistent/steady-no-such-program"]))
        #expect(outcome.result.phase == .failed)
        #expect(outcome.result.reason == "StartFailed")
        #expect(outcome.result.startTime == nil)
        #expect(recorder.starts.withLock { $0 } == 0)
    }

    @Test func aTimeoutStopsTheGroupWithSIGTERM() async {
        // The shell waits for its child; SIGTERM to the group stops both, so the run ends long before 30 s.
        let (outcome, _) = await run(
            Self.executor(), Self.request(["/bin/sh", "-c", "sleep 30; echo late"], timeout: 500))
        #expect(outcome.result.phase == .timedOut)
        #expect(outcome.result.reason == "Timeout")
        #expect(outcome.result.signal == Int(SIGTERM))
        #expect(outcome.result.exitCode == nil)
    }

    @Test func aProcessIgnoringSIGTERMGetsSIGKILL() async {
        let script = #"trap "" TERM; echo ready; sleep 30; echo late"#
        let (outcome, recorder) = await run(Self.executor(), Self.request(["/bin/sh", "-c", script], timeout: 500))
        #expect(outcome.result.phase == .timedOut)
        #expect(outcome.result.signal == Int(SIGKILL))
        #expect(recorder.bytes(.stdout) == "ready\n")
    }

    @Test func cancellingKillsTheGroup() async {
        let cancellation = RunCancellation()
        let recorder = Recorder()
        let executor = Self.executor()
        let request = Self.request(["/bin/sh", "-c", "echo started; sleep 30; echo late"])
        let outcome = await executor.run(
            request, cancellation: cancellation,
            onOutput: { stream, bytes in
                recorder.chunks.withLock { $0.append((stream, bytes)) }
                cancellation.cancel()
            })
        #expect(outcome.result.phase == .cancelled)
        #expect(outcome.result.reason == "Cancelled")
        #expect(outcome.result.signal == Int(SIGTERM))
        #expect(recorder.bytes(.stdout) == "started\n")
    }

    @Test func aRunCancelledBeforeItStartsNeverStarts() async {
        let cancellation = RunCancellation()
        cancellation.cancel()
        let (outcome, recorder) = await run(
            Self.executor(), Self.request(["/bin/echo", "no"]), cancellation: cancellation)
        #expect(outcome.result.phase == .cancelled)
        #expect(recorder.starts.withLock { $0 } == 0)
    }

    @Test func largeOutputIsBoundedWithItsTailKept() async {
        // 3 MB through a 64 KiB bound: every byte counted and streamed, the tail kept exactly.
        let script = "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo THE-END"
        let (outcome, recorder) = await run(
            Self.executor(), Self.request(["/bin/sh", "-c", script], maxOutputBytes: 64 * 1024))
        #expect(outcome.result.phase == .succeeded)
        #expect(outcome.result.outputBytes == 3_000_000 + 1 + 8)
        #expect(outcome.result.outputTruncated == true)
        #expect(outcome.output.keptBytes == 64 * 1024)
        #expect(String(decoding: outcome.output.bytes().suffix(10), as: UTF8.self) == "x\nTHE-END\n")
        #expect(recorder.chunks.withLock { $0.reduce(0) { $0 + $1.1.count } } == 3_000_009)
    }
}
