import Foundation
import Logging
import Resources

/// The agent's side of remote runs: the thin actor around ``RunLedger`` and ``RunExecutor`` that turns the
/// controller's run messages into processes and answers with run messages.
///
/// - `runRequest`: a UID the ledger has never seen is recorded, answered `runAccepted` and started (or answered
///   `runRefused` when ``RunExecutor/admit(_:)`` refuses it); a UID already running is answered `runAccepted`
///   again; a finished one is answered with its `runResult` again. Nothing starts twice.
/// - `runCancel`: the run's process group is stopped; its result is `Cancelled`.
/// - `runAcknowledge`: the ledger stops re-sending that result.
/// - While it runs: `runStarted`, then `runOutput` chunks (numbered per run across both streams), then `runResult`.
///   Sending waits for the stream, so a slow controller slows the reading of the process's output (the pipe fills
///   and the process waits) rather than growing a buffer here.
/// - While disconnected, runs go on; output chunks are dropped (the bounded output stays in the executor's
///   `OutputBuffer`) and results stay in the ledger, sent by ``connected(send:)`` on the next stream.
///
/// Wiring: the agent runs ``run()`` in its service group for its whole life; its stream loop calls
/// ``connected(send:)`` when a stream is up (with a closure writing one line: `RunAgentMessage.line()`),
/// ``disconnected()`` when it drops, and ``handle(_:)`` for each line `RunControllerMessage.decode(line:)` returns.
/// ``RunScheduler`` calls ``runScheduled(_:onStart:)`` for the runs on the Runner's own schedule.
public actor RunService {
    /// Writes one message on the current stream.
    public typealias Send = @Sendable (RunAgentMessage) async -> Void

    private var ledger: RunLedger
    private let executor: RunExecutor
    private let logger: Logger
    private var send: Send?
    private var cancellations: [String: RunCancellation] = [:]
    private var sequences: [String: Int64] = [:]
    private let work: AsyncStream<RunRequest>
    private let workContinuation: AsyncStream<RunRequest>.Continuation

    /// The newest result of a scheduled run: the ledger's at start, then each one's as it ends.
    public private(set) var lastScheduledResult: RunResult?

    public init(executor: RunExecutor, ledger: RunLedger, logger: Logger) {
        var ledger = ledger
        // Scheduled runs reach the Runner's status in the agent's report, and their results are not re-sent after a
        // reconnect: one the ledger made on load (AgentRestarted) is acknowledged here.
        for result in ledger.unacknowledgedResults where result.runUID.hasPrefix(RunSchedule.runUIDPrefix) {
            Self.acknowledge(result.runUID, in: &ledger, logger: logger)
        }
        lastScheduledResult = ledger.latestResult(uidPrefix: RunSchedule.runUIDPrefix)
        self.executor = executor
        self.ledger = ledger
        self.logger = logger
        (work, workContinuation) = AsyncStream<RunRequest>.makeStream()
    }

    /// Runs the accepted runs, each in a child task, until the calling task is cancelled; then stops the running
    /// process groups and records their results.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for await request in work {
                group.addTask { _ = await self.execute(request) }
            }
        }
    }

    /// A stream to the controller is up: results not yet acknowledged are sent on it, oldest first.
    public func connected(send: @escaping Send) async {
        self.send = send
        for result in ledger.unacknowledgedResults {
            await send(.result(result))
        }
    }

    /// The stream dropped: nothing is sent until the next ``connected(send:)``.
    public func disconnected() {
        send = nil
    }

    /// UIDs of the runs going now.
    public var runningUIDs: [String] { cancellations.keys.sorted() }

    /// Acts on one message from the controller.
    public func handle(_ message: RunControllerMessage) async {
        switch message {
        case .request(let request):
            await take(request)
        case .cancel(let cancel):
            cancellations[cancel.runUID]?.cancel()
        case .acknowledge(let acknowledge):
            Self.acknowledge(acknowledge.runUID, in: &ledger, logger: logger)
        }
    }

    /// Runs a scheduled request (``RunSchedule/request(startingAt:)``) to its end through the ledger and the
    /// executor, as a remote run, and returns its result; nil when the ledger has seen its UID already (that slot
    /// ran before) or cannot record it. Its start, output and result go on the stream while one is up, for the
    /// controller to keep its output; the result reaches the Runner's status in the agent's report, so it is
    /// acknowledged in the ledger at once and never sent again.
    public func runScheduled(
        _ request: RunRequest, onStart: @escaping @Sendable (Date) async -> Void = { _ in }
    ) async -> RunResult? {
        guard begin(request) == .start else { return nil }
        // A refusal (no run command) comes back as a `Refused` result without starting anything.
        let result = await execute(request, onStart: onStart)
        Self.acknowledge(request.runUID, in: &ledger, logger: logger)
        lastScheduledResult = result
        return result
    }

    /// Records `request` in the ledger; nil when it cannot (then it must not start: a restart could start it again).
    private func begin(_ request: RunRequest) -> RunLedger.Admission? {
        do {
            return try ledger.begin(request)
        } catch {
            logger.error(
                "cannot record a run before starting it; it is not started", metadata: metadata(request.runUID, error))
            return nil
        }
    }

    private static func acknowledge(_ uid: String, in ledger: inout RunLedger, logger: Logger) {
        do {
            try ledger.acknowledge(uid)
        } catch {
            logger.error(
                "cannot record an acknowledged run", metadata: ["steady.run": "\(uid)", "steady.error": "\(error)"])
        }
    }

    private func take(_ request: RunRequest) async {
        guard let admission = begin(request) else { return }
        switch admission {
        case .alreadyStarted:
            await send?(.accepted(RunAccepted(runUID: request.runUID)))
        case .alreadyFinished(let result):
            await send?(.result(result))
        case .start:
            if case .refused(let refusal) = executor.admit(request) {
                let result = RunResult(
                    runUID: request.runUID, phase: .refused, completionTime: Timestamp.now(),
                    reason: refusal.reason.rawValue, message: refusal.message)
                record(result, runName: request.runName)
                await send?(.refused(refusal))
                return
            }
            cancellations[request.runUID] = RunCancellation()
            sequences[request.runUID] = 0
            await send?(.accepted(RunAccepted(runUID: request.runUID)))
            workContinuation.yield(request)
        }
    }

    private func execute(
        _ request: RunRequest, onStart: @escaping @Sendable (Date) async -> Void = { _ in }
    ) async -> RunResult {
        let uid = request.runUID
        let cancellation = cancellations[uid] ?? RunCancellation()
        cancellations[uid] = cancellation
        sequences[uid] = sequences[uid] ?? 0
        let outcome = await executor.run(
            request, cancellation: cancellation,
            onStart: { time in
                await onStart(time)
                await self.deliver(.started(RunStarted(runUID: uid, startTime: Timestamp.format(time))))
            },
            onOutput: { stream, bytes in await self.emit(uid, stream, bytes) })
        cancellations[uid] = nil
        sequences[uid] = nil
        record(outcome.result, runName: request.runName)
        await send?(.result(outcome.result))
        return outcome.result
    }

    private func deliver(_ message: RunAgentMessage) async {
        await send?(message)
    }

    private func emit(_ uid: String, _ stream: RunOutputStream, _ bytes: [UInt8]) async {
        let first = sequences[uid] ?? 0
        let chunks = RunOutputChunk.chunks(runUID: uid, stream: stream, firstSequence: first, bytes: bytes)
        sequences[uid] = first + Int64(chunks.count)
        for chunk in chunks {
            await send?(.output(chunk))
        }
    }

    private func record(_ result: RunResult, runName: String) {
        do {
            try ledger.finish(result, runName: runName)
        } catch {
            logger.error(
                "cannot record a run's result; it is reported now but not after a restart",
                metadata: metadata(result.runUID, error))
        }
    }

    private func metadata(_ uid: String, _ error: any Error) -> Logger.Metadata {
        ["steady.run": "\(uid)", "steady.error": "\(error)"]
    }
}
