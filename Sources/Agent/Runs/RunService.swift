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
/// - While disconnected, runs go on; output that cannot be sent is kept in a ``RunOutputBacklog`` (bounded head
///   and tail per run, on disk) and results stay in the ledger. On the next stream ``connected(send:)`` sends each
///   run's kept output, then the results; a run's newer output waits behind its backlog, so order is kept.
/// - Scheduled runs keep a backlog too, for the latest scheduled run only (the controller keeps only the latest's
///   output, and a start drops the previous one's): when its `runStarted` could not be sent it goes first on the next
///   stream, then its kept output, then its result (scheduled results are not otherwise re-sent: they reach the
///   Runner's status in the agent's report).
///
/// Wiring: the agent runs ``run()`` in its service group for its whole life; its stream loop calls
/// ``connected(send:)`` when a stream is up (with a closure writing one line, `RunAgentMessage.line()`, and saying
/// whether it could), ``disconnected()`` when it drops, and ``handle(_:)`` for each line
/// `RunControllerMessage.decode(line:)` returns.
/// ``RunScheduler`` calls ``runScheduled(_:onStart:)`` for the runs on the Runner's own schedule.
public actor RunService {
    /// Writes one message on the current stream; false when it could not (the stream is going away).
    public typealias Send = @Sendable (RunAgentMessage) async -> Bool

    private var ledger: RunLedger
    private let executor: RunExecutor
    private let logger: Logger
    private var send: Send?
    private var cancellations: [String: RunCancellation] = [:]
    private var sequences: [String: Int64] = [:]
    /// The output bound of each run going now (`maxOutputBytes`), for its backlog.
    private var outputLimits: [String: Int] = [:]
    private var backlog: RunOutputBacklog
    /// Counts streams up and down, so that a backlog being sent on a stream that went away stops.
    private var connection = 0
    private let work: AsyncStream<RunRequest>
    private let workContinuation: AsyncStream<RunRequest>.Continuation

    /// The newest result of a scheduled run: the ledger's at start, then each one's as it ends.
    public private(set) var lastScheduledResult: RunResult?
    /// The latest scheduled run's start and result, when they could not be sent: sent on the next stream, around
    /// its kept output.
    private var unsentScheduledStart: RunStarted?
    private var unsentScheduledResult: RunResult?

    /// A service keeping its ledger and its output backlog in `stateDirectory` (nil: the backlog in memory only;
    /// the ledger's own directory is given with it).
    public init(executor: RunExecutor, ledger: RunLedger, stateDirectory: String? = nil, logger: Logger) {
        var ledger = ledger
        // Scheduled runs reach the Runner's status in the agent's report, and their results are not re-sent after a
        // reconnect: one the ledger made on load (AgentRestarted) is acknowledged here.
        for result in ledger.unacknowledgedResults where result.runUID.hasPrefix(RunSchedule.runUIDPrefix) {
            Self.acknowledge(result.runUID, in: &ledger, logger: logger)
        }
        lastScheduledResult = ledger.latestScheduledResult
        var backlog = RunOutputBacklog(stateDirectory: stateDirectory, logger: logger)
        var kept = Set(ledger.unacknowledgedResults.map(\.runUID))
        if let latest = lastScheduledResult { kept.insert(latest.runUID) }
        backlog.retain { kept.contains($0) }
        // The latest scheduled run's kept output goes with its result, and with its start when none of its output
        // was sent before the agent stopped (a start drops the controller's copy of the previous run's output).
        if let latest = lastScheduledResult, let pending = backlog.pending[latest.runUID] {
            unsentScheduledResult = latest
            if pending.firstSequence == 0 {
                unsentScheduledStart = RunStarted(
                    runUID: latest.runUID, startTime: latest.startTime ?? latest.completionTime)
            }
        }
        self.backlog = backlog
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

    /// A stream to the controller is up: output kept while none was goes first, then the results not yet
    /// acknowledged, oldest first; then output is sent as it comes.
    public func connected(send: @escaping Send) async {
        connection += 1
        let current = connection
        self.send = nil
        // Output arriving meanwhile joins the backlog (`send` is nil), and is sent in a later round.
        while connection == current {
            guard await sendScheduledStart(send) else { return }
            guard let uid = backlog.runUIDs.first, let entry = backlog.take(uid) else { break }
            let chunks = Self.chunks(of: entry, uid: uid, from: max(sequences[uid] ?? 0, entry.firstSequence))
            for (index, chunk) in chunks.enumerated() {
                guard connection == current, await send(.output(chunk)) else {
                    var rest = RunOutputBacklog.Pending(
                        buffer: OutputBuffer(limit: entry.buffer.limit), firstSequence: chunk.sequence)
                    for unsent in chunks[index...] {
                        rest.buffer.skip(unsent.droppedBefore ?? 0)
                        rest.buffer.append(unsent.bytes ?? [], from: unsent.stream)
                    }
                    backlog.putBack(rest, uid: uid)
                    return
                }
                if sequences[uid] != nil { sequences[uid] = chunk.sequence + 1 }
            }
            backlog.remove(uid)
        }
        guard connection == current, await sendScheduledStart(send) else { return }
        self.send = send
        if let result = unsentScheduledResult {
            guard await send(.result(result)) else { return }
            if unsentScheduledResult == result { unsentScheduledResult = nil }
        }
        for result in ledger.unacknowledgedResults {
            guard await send(.result(result)) else { return }
        }
    }

    /// Sends the latest scheduled run's start if it was not sent; false when the stream failed.
    private func sendScheduledStart(_ send: Send) async -> Bool {
        guard let started = unsentScheduledStart else { return true }
        guard await send(.started(started)) else { return false }
        if unsentScheduledStart == started { unsentScheduledStart = nil }
        return true
    }

    /// The stream dropped: nothing is sent until the next ``connected(send:)``.
    public func disconnected() {
        connection += 1
        send = nil
    }

    /// UIDs of the runs going now, or finishing: a run leaves once its result is recorded and sent or kept.
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
        guard begin(request) == .start, await makeDurable(startOf: request.runUID) else { return nil }
        // A refusal (no run command) comes back as a `Refused` result without starting anything.
        let result = await execute(request, onStart: onStart)
        Self.acknowledge(request.runUID, in: &ledger, logger: logger)
        lastScheduledResult = result
        return result
    }

    /// Records `request` in the ledger; nil when it cannot (then it must not start: a restart could start it again).
    /// A new start is not yet on disk: ``makeDurable(startOf:)`` before the process starts.
    private func begin(_ request: RunRequest) -> RunLedger.Admission? {
        do {
            return try ledger.begin(request)
        } catch {
            ledger.abandon(request.runUID)
            logger.error(
                "cannot record a run before starting it; it is not started", metadata: metadata(request.runUID, error))
            return nil
        }
    }

    /// Waits until the ledger's start of `uid` is on disk; false (the start forgotten) when it cannot be.
    private func makeDurable(startOf uid: String) async -> Bool {
        do {
            try await ledger.makeDurable()
            return true
        } catch {
            ledger.abandon(uid)
            logger.error("cannot record a run before starting it; it is not started", metadata: metadata(uid, error))
            return false
        }
    }

    /// Waits until the ledger's result of `uid` is on disk, before it is reported.
    private func makeDurable(resultOf uid: String) async {
        do {
            try await ledger.makeDurable()
        } catch {
            logger.error(
                "cannot record a run's result; it is reported now but not after a restart", metadata: metadata(uid, error))
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
            await deliver(.accepted(RunAccepted(runUID: request.runUID)))
        case .alreadyFinished(let result):
            // Behind its kept output, if any: connected(send:) sends both.
            if !backlog.holds(request.runUID) { await deliver(.result(result)) }
        case .start:
            if case .refused(let refusal) = executor.admit(request) {
                let result = RunResult(
                    runUID: request.runUID, phase: .refused, completionTime: Timestamp.now(),
                    reason: refusal.reason.rawValue, message: refusal.message)
                record(result, runName: request.runName)
                await makeDurable(resultOf: request.runUID)
                await deliver(.refused(refusal))
                return
            }
            // Set before the start is flushed, so that a cancel arriving meanwhile is not lost.
            cancellations[request.runUID] = RunCancellation()
            sequences[request.runUID] = 0
            guard await makeDurable(startOf: request.runUID) else {
                cancellations[request.runUID] = nil
                sequences[request.runUID] = nil
                return
            }
            await deliver(.accepted(RunAccepted(runUID: request.runUID)))
            workContinuation.yield(request)
        }
    }

    private func execute(
        _ request: RunRequest, onStart: @escaping @Sendable (Date) async -> Void = { _ in }
    ) async -> RunResult {
        let uid = request.runUID
        let isScheduled = uid.hasPrefix(RunSchedule.runUIDPrefix)
        if isScheduled {
            // A new scheduled run supersedes the previous one's unsent output, start and result.
            backlog.retain { !$0.hasPrefix(RunSchedule.runUIDPrefix) || $0 == uid }
            unsentScheduledStart = nil
            unsentScheduledResult = nil
        }
        let cancellation = cancellations[uid] ?? RunCancellation()
        cancellations[uid] = cancellation
        sequences[uid] = sequences[uid] ?? 0
        outputLimits[uid] = request.maxOutputBytes
        let outcome = await executor.run(
            request, cancellation: cancellation,
            onStart: { time in
                await onStart(time)
                await self.started(RunStarted(runUID: uid, startTime: Timestamp.format(time)))
            },
            onOutput: { stream, bytes in await self.emit(uid, stream, bytes) })
        sequences[uid] = nil
        outputLimits[uid] = nil
        // Kept output is on disk before the result is in the ledger, so a restart sends both or the result alone.
        backlog.flush(uid)
        record(outcome.result, runName: request.runName)
        await makeDurable(resultOf: uid)
        // Output still waiting goes first, on the next stream, and the result after it.
        var isSent = false
        if !backlog.holds(uid) && unsentScheduledStart?.runUID != uid { isSent = await deliver(.result(outcome.result)) }
        if isScheduled && !isSent { unsentScheduledResult = outcome.result }
        // Listed as going until here: a stream that connects once the run has left the list finds its result in the
        // ledger and nothing more to come from this run (a test reconnecting in between saw the result twice).
        cancellations[uid] = nil
        return outcome.result
    }

    /// Sends a run's start; a scheduled run's start that cannot be sent is kept for the next stream.
    private func started(_ message: RunStarted) async {
        let isSent = await deliver(.started(message))
        if !isSent && message.runUID.hasPrefix(RunSchedule.runUIDPrefix) { unsentScheduledStart = message }
    }

    @discardableResult
    private func deliver(_ message: RunAgentMessage) async -> Bool {
        await send?(message) ?? false
    }

    /// Sends output as it comes; keeps it in the backlog when no stream is up, when a send fails, or while older
    /// output of the run waits there.
    private func emit(_ uid: String, _ stream: RunOutputStream, _ bytes: [UInt8]) async {
        let first = sequences[uid] ?? 0
        // Behind its unsent start, or its older unsent output, output waits too.
        guard let send, !backlog.holds(uid), unsentScheduledStart?.runUID != uid else {
            keep(bytes, from: stream, uid: uid, sequence: first)
            return
        }
        let chunks = RunOutputChunk.chunks(runUID: uid, stream: stream, firstSequence: first, bytes: bytes)
        sequences[uid] = first + Int64(chunks.count)
        for (index, chunk) in chunks.enumerated() {
            guard await !send(.output(chunk)) else { continue }
            // The sequences of chunks not sent are given again when they are.
            sequences[uid] = chunk.sequence
            for unsent in chunks[index...] {
                keep(unsent.bytes ?? [], from: stream, uid: uid, sequence: chunk.sequence)
            }
            return
        }
    }

    private func keep(_ bytes: [UInt8], from stream: RunOutputStream, uid: String, sequence: Int64) {
        backlog.append(
            bytes, from: stream, uid: uid, sequence: sequence,
            limit: outputLimits[uid] ?? RunProtocol.defaultMaximumOutputBytes)
    }

    /// The kept output of a backlog entry as chunks numbered from `sequence`, head then tail: the buffer's
    /// segments of one stream joined into chunks as large as the protocol allows. When the middle was dropped, the
    /// tail's first chunk says how many bytes (`droppedBefore`).
    static func chunks(of entry: RunOutputBacklog.Pending, uid: String, from sequence: Int64) -> [RunOutputChunk] {
        var chunks: [RunOutputChunk] = []
        var pending: (stream: RunOutputStream, bytes: [UInt8])?
        var gap = entry.droppedBytes
        func flush() {
            guard let run = pending else { return }
            var made = RunOutputChunk.chunks(
                runUID: uid, stream: run.stream, firstSequence: sequence + Int64(chunks.count), bytes: run.bytes)
            if gap > 0, !made.isEmpty {
                made[0].droppedBefore = gap
                gap = 0
            }
            chunks += made
            pending = nil
        }
        func add(_ segments: [OutputBuffer.Segment]) {
            for segment in segments {
                if pending?.stream != segment.stream || (pending?.bytes.count ?? 0) >= RunProtocol.maximumChunkBytes {
                    flush()
                }
                pending = (segment.stream, (pending?.bytes ?? []) + segment.bytes)
            }
        }
        // The head's chunks carry no gap: it is placed before the tail's first.
        let headGap = gap
        gap = 0
        add(entry.buffer.head)
        flush()
        gap = headGap
        add(entry.buffer.tail)
        flush()
        return chunks
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
