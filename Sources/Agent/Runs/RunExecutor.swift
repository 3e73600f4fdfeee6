import Foundation
import Resources
import Subprocess
import Synchronization

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Runs one remote or scheduled run as a process: no shell, empty standard input, its own session and process
/// group, output streamed and bounded, a timeout that stops the whole group.
///
/// The process gets the agent's environment plus `STEADY_RUN_NAME`, `STEADY_RUNNER` and `STEADY_RUN_CONDITIONS`
/// (the conditions, comma-separated). When `timeout` runs out, or the run is cancelled, the process group gets
/// SIGTERM and, if anything in it is still alive after ``Configuration/killGracePeriod``, SIGKILL.
///
/// Wiring: for a `RunRequest` the agent asks ``admit(_:)`` first; a refusal is answered with `RunRefused` and
/// recorded in the ``RunLedger`` as the run's result. Otherwise, once the ledger has recorded the start, the agent
/// calls ``run(_:cancellation:onStart:onOutput:)``: `onStart` sends `RunStarted`, `onOutput` sends
/// `RunOutputChunk`s (split by `RunOutputChunk.chunks`), and the returned outcome is written to the ledger and sent
/// as `RunResult`. Scheduled runs call it with a request of their own (no `command`).
public struct RunExecutor: Sendable {
    /// What the operator allowed on this host.
    public struct Configuration: Sendable {
        /// This agent's runner name, given to the process as `STEADY_RUNNER`.
        public var runner: String
        /// The agent's own run command (`--run-command`, split by ``RunCommandLine``); nil when not given.
        public var runCommand: [String]?
        /// Whether an explicit `command` may run (`--allow-exec`).
        public var allowsExec: Bool
        /// How long the process group has between SIGTERM and SIGKILL.
        public var killGracePeriod: Duration

        public init(runner: String, runCommand: [String]?, allowsExec: Bool, killGracePeriod: Duration = .seconds(10)) {
            self.runner = runner
            self.runCommand = runCommand
            self.allowsExec = allowsExec
            self.killGracePeriod = killGracePeriod
        }
    }

    /// Whether a request may run here, and what.
    public enum Admission: Sendable, Equatable {
        /// Run this argv.
        case run([String])
        /// Nothing runs; answer with this.
        case refused(RunRefused)
    }

    /// How a run ended: the result to report and the output kept.
    public struct Outcome: Sendable, Equatable {
        public var result: RunResult
        public var output: OutputBuffer
    }

    public var configuration: Configuration

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The argv `request` runs, or why it does not run here.
    public func admit(_ request: RunRequest) -> Admission {
        if let command = request.command {
            guard configuration.allowsExec else {
                return .refused(
                    RunRefused(
                        runUID: request.runUID, reason: .execNotAllowed,
                        message: "runner \(configuration.runner) runs only its own run command; start its agent "
                            + "with --allow-exec to run spec.command"))
            }
            return .run(command)
        }
        guard let runCommand = configuration.runCommand else {
            return .refused(
                RunRefused(
                    runUID: request.runUID, reason: .noRunCommand,
                    message: "runner \(configuration.runner) has no run command; start its agent with "
                        + "--run-command \"/path/to/command args\""))
        }
        return .run(runCommand)
    }

    /// The variables added to the agent's environment for `request`.
    public func environment(for request: RunRequest) -> [String: String] {
        [
            "STEADY_RUN_NAME": request.runName, "STEADY_RUNNER": configuration.runner,
            "STEADY_RUN_CONDITIONS": request.conditions.joined(separator: ","),
        ]
    }

    /// Runs `request` to its end and returns how it ended. Never throws: a process that cannot start is `Failed`
    /// with reason `StartFailed`, a refusal is `Refused`.
    ///
    /// - Parameters:
    ///   - cancellation: cancel it to kill the process group; the result is then `Cancelled`.
    ///   - onStart: called once the process runs, with its start time.
    ///   - onOutput: called with each piece of output as it is read, in order per stream.
    public func run(
        _ request: RunRequest, cancellation: RunCancellation = RunCancellation(),
        onStart: @escaping @Sendable (Date) async -> Void = { _ in },
        onOutput: @escaping @Sendable (RunOutputStream, [UInt8]) async -> Void = { _, _ in }
    ) async -> Outcome {
        let progress = RunProgress(limit: request.maxOutputBytes)
        func outcome(_ result: RunResult) -> Outcome {
            var result = result
            let buffer = progress.output.withLock { $0 }
            result.outputBytes = buffer.totalBytes
            result.outputTruncated = buffer.isTruncated
            return Outcome(result: result, output: buffer)
        }
        let argv: [String]
        switch admit(request) {
        case .refused(let refusal):
            return outcome(
                RunResult(
                    runUID: request.runUID, phase: .refused, completionTime: Timestamp.now(),
                    reason: refusal.reason.rawValue, message: refusal.message))
        case .run(let words):
            argv = words
        }
        if cancellation.isCancelled {
            return outcome(
                RunResult(
                    runUID: request.runUID, phase: .cancelled, completionTime: Timestamp.now(), reason: "Cancelled",
                    message: "cancelled before it started"))
        }

        var options = PlatformOptions()
        // setsid(): a session and process group of its own, detached from any terminal, so that one signal to the
        // group reaches everything the run command starts, and nothing of the agent.
        options.createSession = true
        // When the calling task is cancelled (the agent shuts down), the whole group is stopped the same way.
        options.teardownSequence = [
            .gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: configuration.killGracePeriod)
        ]
        let variables = environment(for: request).map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) }
        let grace = configuration.killGracePeriod
        let timeout = request.timeoutMilliseconds.map { Duration.milliseconds($0) }
        do {
            let finished = try await Subprocess.run(
                .path(FilePath(argv[0])), arguments: Arguments(Array(argv.dropFirst())),
                environment: .inherit.updating(Dictionary(uniqueKeysWithValues: variables)),
                platformOptions: options, input: .none, output: .sequence, error: .sequence
            ) { execution in
                let startTime = Date()
                progress.started.withLock { $0 = startTime }
                await onStart(startTime)
                try await withThrowingTaskGroup(of: RunOutputStream?.self) { group in
                    for stream in [RunOutputStream.stdout, .stderr] {
                        let sequence = stream == .stdout ? execution.standardOutput : execution.standardError
                        group.addTask {
                            for try await buffer in sequence {
                                let bytes = buffer.withUnsafeBytes { Array($0) }
                                progress.output.withLock { $0.append(bytes, from: stream) }
                                await onOutput(stream, bytes)
                            }
                            return stream
                        }
                    }
                    // Stops the group on timeout or cancel; cancelled itself once both streams are closed.
                    group.addTask {
                        guard let reason = await Self.waitForStop(timeout: timeout, cancellation: cancellation) else {
                            return nil
                        }
                        progress.stop.withLock { $0 = $0 ?? reason }
                        try? execution.send(signal: .terminate, toProcessGroup: true)
                        try? await Task.sleep(for: grace)
                        if !Task.isCancelled { try? execution.send(signal: .kill, toProcessGroup: true) }
                        return nil
                    }
                    var open = 2
                    while open > 0, let finished = try await group.next() {
                        if finished != nil { open -= 1 }
                    }
                    group.cancelAll()
                }
            }
            return outcome(
                Self.result(
                    of: finished.terminationStatus, request: request,
                    stop: progress.stop.withLock { $0 } ?? (Task.isCancelled ? .agentStopped : nil),
                    startTime: progress.started.withLock { $0 }, timeout: timeout, grace: grace))
        } catch {
            let startTime = progress.started.withLock { $0 }
            if Task.isCancelled {
                return outcome(
                    RunResult(
                        runUID: request.runUID, phase: .cancelled, startTime: startTime.map(Timestamp.format),
                        completionTime: Timestamp.now(), reason: "AgentStopped", message: Self.agentStoppedMessage))
            }
            return outcome(
                RunResult(
                    runUID: request.runUID, phase: .failed, startTime: startTime.map(Timestamp.format),
                    completionTime: Timestamp.now(), reason: startTime == nil ? "StartFailed" : "OutputFailed",
                    message: startTime == nil
                        ? "cannot start \(argv[0]): \(error)" : "reading the output failed: \(error)"))
        }
    }

    /// What the tasks of one run share.
    final class RunProgress: Sendable {
        let output: Mutex<OutputBuffer>
        let stop = Mutex<StopReason?>(nil)
        let started = Mutex<Date?>(nil)

        init(limit: Int) { output = Mutex(OutputBuffer(limit: limit)) }
    }

    /// Why the executor stopped a process.
    enum StopReason: Sendable {
        case timedOut
        case cancelled
        /// The calling task was cancelled: the agent is shutting down.
        case agentStopped
    }

    static let agentStoppedMessage = "the agent stopped while it ran; its process group was stopped"

    /// Returns when `timeout` runs out or the run is cancelled; nil when the calling task is cancelled first.
    static func waitForStop(timeout: Duration?, cancellation: RunCancellation) async -> StopReason? {
        await withTaskGroup(of: StopReason?.self) { group in
            group.addTask {
                await cancellation.wait()
                return cancellation.isCancelled ? .cancelled : nil
            }
            if let timeout {
                group.addTask {
                    do {
                        try await Task.sleep(for: timeout)
                        return .timedOut
                    } catch {
                        return nil
                    }
                }
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    static func result(
        of status: TerminationStatus, request: RunRequest, stop: StopReason?, startTime: Date?, timeout: Duration?,
        grace: Duration
    ) -> RunResult {
        var result = RunResult(
            runUID: request.runUID, phase: .failed, startTime: startTime.map(Timestamp.format),
            completionTime: Timestamp.now())
        switch status {
        case .exited(let code): result.exitCode = Int(code)
        case .signaled(let signal): result.signal = Int(signal)
        }
        switch stop {
        case .timedOut:
            result.phase = .timedOut
            result.reason = "Timeout"
            let limit = timeout.map { DurationString(seconds: Self.seconds($0)).text } ?? "its timeout"
            result.message =
                result.signal == Int(SIGKILL)
                ? "still running after \(limit) and SIGTERM; killed with SIGKILL after \(grace)"
                : "still running after \(limit); stopped with SIGTERM"
        case .cancelled:
            result.phase = .cancelled
            result.reason = "Cancelled"
            result.message = "cancelled while running; its process group was stopped"
        case .agentStopped:
            result.phase = .cancelled
            result.reason = "AgentStopped"
            result.message = agentStoppedMessage
        case nil:
            if result.exitCode == 0 {
                result.phase = .succeeded
            } else if let code = result.exitCode {
                result.reason = "NonZeroExit"
                result.message = "exited with status \(code)"
            } else {
                result.reason = "Signalled"
                result.message = "ended by signal \(result.signal ?? 0)"
            }
        }
        return result
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
