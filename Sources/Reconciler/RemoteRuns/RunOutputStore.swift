import Foundation
import Resources
import Synchronization

/// Where RemoteRun output lives on the controller: outside the RemoteRun object, so it never bloats watches and
/// lists, bounded per (run, runner) by ``OutputBuffer``'s head and tail, and kept in files so that what was
/// recorded survives a controller restart.
///
/// Files, all 0600 under `directory` (the controller's `<data-dir>/run-output`):
/// - `<run-uid>/<runner>.head`: the head, appended as it fills, then never written again;
/// - `<run-uid>/<runner>.tail`: every byte count seen, then the tail; rewritten whole (a temporary file renamed
///   over it) each time half the tail limit has arrived since the last write, and when the runner finishes.
///   A crash loses at most the tail bytes that arrived since the last rewrite; the agent sends its kept output
///   again with the result after a reconnect.
///
/// Both files hold records: one byte for the stream (0 stdout, 1 stderr), four for the length (big-endian), then
/// the bytes. Names that are not plain `[A-Za-z0-9_-]` are percent-encoded into file names.
///
/// Memory: a runner that is producing output holds one ``OutputBuffer`` (at most `limitPerRunner` bytes); a
/// finished runner's output is read back from its files when asked for. 30 MB in never makes 30 MB of RAM.
///
/// Followers (``follow(run:runner:)``) get what is stored, then live chunks. A follower of one runner ends when
/// that runner finishes; a follower of every runner ends when the run completes (``complete(run:)``), since more
/// runners may start later (batches). Deleting the run ends every follower.
public final class RunOutputStore: Sendable {
    /// One followed chunk.
    public typealias Chunk = (runner: String, stream: RunOutputStream, bytes: [UInt8])

    /// A runner's kept output with where the middle was dropped, for the `log` subresource.
    public struct RunnerOutput: Sendable, Equatable {
        public var runner: String
        public var head: [OutputBuffer.Segment]
        public var tail: [OutputBuffer.Segment]
        /// Bytes written by the process, kept or not.
        public var totalBytes: Int64
        /// The head, a ``FollowEvent/dropped(runner:bytes:)`` when bytes were dropped, then the tail.
        public var events: [FollowEvent] {
            let output = { (segment: OutputBuffer.Segment) in
                FollowEvent.output(runner: runner, stream: segment.stream, bytes: segment.bytes)
            }
            return head.map(output) + (droppedBytes > 0 ? [.dropped(runner: runner, bytes: droppedBytes)] : [])
                + tail.map(output)
        }

        /// Bytes dropped between `head` and `tail`.
        public var droppedBytes: Int64 {
            totalBytes - Int64((head + tail).reduce(0) { $0 + $1.bytes.count })
        }
    }

    /// A runner with output coming in.
    private struct LiveRunner {
        var buffer: OutputBuffer
        /// Bytes dropped before a restart, when the runner was restored from its files.
        var restoredDroppedBytes: Int64 = 0
        /// Head bytes already in the `.head` file.
        var headWritten = 0
        /// Whether the head is closed by a gap (``drop(run:runner:bytes:)``) before it was full: the `.tail` file is
        /// written even when everything fits in the head's size.
        var isHeadClosed = false
        /// Tail bytes appended since the `.tail` file was last rewritten.
        var unflushedTailBytes = 0

        var totalBytes: Int64 { buffer.totalBytes + restoredDroppedBytes }
    }

    /// What a follower of ``followEvents(run:runner:)`` gets.
    public enum FollowEvent: Sendable, Equatable {
        /// Output bytes of one runner's stream.
        case output(runner: String, stream: RunOutputStream, bytes: [UInt8])
        /// In the stored output, between a runner's head and tail: this many bytes were dropped there.
        case dropped(runner: String, bytes: Int64)

        /// The runner whose output this is.
        public var runner: String {
            switch self {
            case .output(let runner, _, _), .dropped(let runner, _): runner
            }
        }
    }

    private struct Follower {
        var run: String
        var runner: String?
        /// Takes an event and the runner's byte count once it is appended (its end offset).
        var yield: @Sendable (FollowEvent, Int64) -> Void
        var end: @Sendable () -> Void
    }

    private struct State {
        /// Runners producing output now, by run then runner.
        var live: [String: [String: LiveRunner]] = [:]
        /// Runners finished since this store opened, by run.
        var finished: [String: Set<String>] = [:]
        /// Runs completed since this store opened.
        var completed: Set<String> = []
        var followers: [Int: Follower] = [:]
        var nextFollower = 0
        /// Runs whose directory this store made or found, so it is not looked for again at each new runner.
        var directories: Set<String> = []
        /// Runs whose directory this store made: a runner of theirs that is neither live nor finished has no files,
        /// and its first output needs no look at the disk.
        var madeDirectories: Set<String> = []
    }

    /// The directory holding one directory per run.
    public let directory: URL
    /// The most bytes kept per runner, head and tail together.
    public let limitPerRunner: Int
    private let state = Mutex(State())

    /// Opens (or creates, on the first append) the store in `directory`.
    public init(directory: URL, limitPerRunner: Int = RunProtocol.defaultMaximumOutputBytes) {
        self.directory = directory
        self.limitPerRunner = max(0, limitPerRunner)
    }

    private var headLimit: Int { limitPerRunner / 2 }
    private var tailLimit: Int { limitPerRunner - headLimit }

    // MARK: Writing

    /// Records bytes `runner` wrote on `stream` for the run with UID `run`, and passes them to its followers.
    public func append(run: String, runner: String, stream: RunOutputStream, bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        state.withLock { state in
            var live = liveRunner(run: run, runner: runner, in: &state)
            live.buffer.append(bytes, from: stream)
            let headBytes = bytes.prefix(max(0, headLimit - live.headWritten))
            if !headBytes.isEmpty {
                appendRecord(Array(headBytes), stream: stream, run: run, runner: runner)
                live.headWritten += headBytes.count
            }
            live.unflushedTailBytes += bytes.count - headBytes.count
            if live.unflushedTailBytes >= max(1, tailLimit / 2) {
                writeTail(live, run: run, runner: runner)
                live.unflushedTailBytes = 0
            }
            Self.keep(
                live, run: run, runner: runner, passing: .output(runner: runner, stream: stream, bytes: bytes),
                in: &state)
        }
    }

    /// Records that `bytes` of `runner`'s output for `run` were dropped here by its agent (its backlog overflowed
    /// while the controller was unreachable): they count in the runner's total, the head takes no more bytes, so the
    /// log shows the gap between the head and the tail; followers get a ``FollowEvent/dropped(runner:bytes:)``.
    public func drop(run: String, runner: String, bytes: Int64) {
        guard bytes > 0 else { return }
        state.withLock { state in
            var live = liveRunner(run: run, runner: runner, in: &state)
            live.buffer.skip(bytes)
            // What the head file holds is the whole head now.
            live.headWritten = max(live.headWritten, headLimit)
            live.isHeadClosed = true
            writeTail(live, run: run, runner: runner)
            live.unflushedTailBytes = 0
            Self.keep(live, run: run, runner: runner, passing: .dropped(runner: runner, bytes: bytes), in: &state)
        }
    }

    /// The live state of a runner, restored from its files (or new) when it is not live.
    /// Keeps `live` as `runner`'s state for `run` (running again, if it had finished) and passes `event` to the
    /// run's followers of that runner or of every runner.
    private static func keep(
        _ live: LiveRunner, run: String, runner: String, passing event: FollowEvent, in state: inout State
    ) {
        state.live[run, default: [:]][runner] = live
        state.finished[run]?.remove(runner)
        for follower in state.followers.values
        where follower.run == run && (follower.runner == nil || follower.runner == runner) {
            follower.yield(event, live.totalBytes)
        }
    }

    private func liveRunner(run: String, runner: String, in state: inout State) -> LiveRunner {
        if let existing = state.live[run]?[runner] { return existing }
        ensureRunDirectory(run, in: &state)
        let hasNoFiles = state.madeDirectories.contains(run) && state.finished[run]?.contains(runner) != true
        return hasNoFiles ? LiveRunner(buffer: OutputBuffer(limit: limitPerRunner)) : restore(run: run, runner: runner)
    }

    /// Says `runner` will write no more output for `run`: its tail is written and its followers end.
    public func finish(run: String, runner: String) {
        let ended = state.withLock { state in
            if let live = state.live[run]?.removeValue(forKey: runner) {
                writeTail(live, run: run, runner: runner)
            }
            state.finished[run, default: []].insert(runner)
            return Self.removeFollowers(of: run, runner: runner, from: &state)
        }
        for follower in ended { follower.end() }
    }

    /// Says no runner of `run` will write more output (the run reached its final phase, or was deleted): every
    /// runner is finished and every follower of the run ends.
    public func complete(run: String) {
        let runners = state.withLock { state in state.live[run].map { Array($0.keys) } ?? [] }
        for runner in runners { finish(run: run, runner: runner) }
        let ended = state.withLock { state in
            state.completed.insert(run)
            return Self.removeFollowers(of: run, from: &state)
        }
        for follower in ended { follower.end() }
    }

    /// Deletes every runner's output of `run`; its followers end.
    public func delete(run: String) {
        let ended = state.withLock { state in
            state.live[run] = nil
            state.finished[run] = nil
            state.completed.remove(run)
            state.directories.remove(run)
            state.madeDirectories.remove(run)
            try? FileManager.default.removeItem(at: runDirectory(run))
            return Self.removeFollowers(of: run, from: &state)
        }
        for follower in ended { follower.end() }
    }

    /// Unsubscribes the followers of `run` (of one runner, when given) and returns them, to be ended once the
    /// lock is released: ending a stream runs its termination handler, which takes the lock.
    private static func removeFollowers(of run: String, runner: String? = nil, from state: inout State) -> [Follower] {
        let ids = state.followers.filter { $0.value.run == run && (runner == nil || $0.value.runner == runner) }.keys
        return ids.compactMap { state.followers.removeValue(forKey: $0) }
    }

    // MARK: Reading

    /// The kept output of one runner, or of every runner of the run (sorted by name): head and tail segments in
    /// order, and whether the middle was dropped.
    public func output(run: String, runner: String?) -> [(
        runner: String, segments: [OutputBuffer.Segment], truncated: Bool
    )] {
        outputs(run: run, runner: runner).map { ($0.runner, $0.head + $0.tail, $0.droppedBytes > 0) }
    }

    /// The kept output of one runner or of every runner of the run (sorted by name), with head and tail apart.
    public func outputs(run: String, runner: String?) -> [RunnerOutput] {
        state.withLock { state in outputs(run: run, runner: runner, state: state) }
    }

    private func outputs(run: String, runner: String?, state: State) -> [RunnerOutput] {
        let names = runner.map { [$0] } ?? runnerNames(run: run, state: state)
        return names.compactMap { name in
            if let live = state.live[run]?[name] {
                return RunnerOutput(
                    runner: name, head: live.buffer.head, tail: live.buffer.tail, totalBytes: live.totalBytes)
            }
            return read(run: run, runner: name)
        }
    }

    /// The runners of `run` that have output stored, sorted by name.
    public func runners(run: String) -> [String] {
        state.withLock { state in runnerNames(run: run, state: state) }
    }

    /// Bytes `runner` wrote for `run`, kept or not, and whether the middle was dropped.
    public func stats(run: String, runner: String) -> (bytes: Int64, truncated: Bool) {
        guard let output = outputs(run: run, runner: runner).first else { return (0, false) }
        return (output.totalBytes, output.droppedBytes > 0)
    }

    /// The stored output of one runner (or every runner), then its live chunks. It ends when that runner finishes
    /// (for one runner), when the run completes, or when it is deleted. Ending the iteration unsubscribes.
    public func follow(run: String, runner: String?) -> AsyncStream<Chunk> {
        let (stream, continuation) = AsyncStream<Chunk>.makeStream(bufferingPolicy: .unbounded)
        subscribe(
            run: run, runner: runner,
            yield: { event, _ in
                if case .output(let runner, let stream, let bytes) = event {
                    continuation.yield((runner, stream, bytes))
                }
            },
            end: { continuation.finish() },
            onTermination: { cancel in continuation.onTermination = { _ in cancel() } })
        return stream
    }

    /// As ``follow(run:runner:)``, with a ``FollowEvent/dropped(runner:bytes:)`` between each runner's stored head
    /// and tail when its middle was dropped. The stored output is read one runner at a time as the sequence is
    /// iterated, so a follower of a run with many runners holds one runner's kept output at a time.
    public func followEvents(run: String, runner: String?) -> RunOutputFollow {
        let (stream, continuation) = AsyncStream<(FollowEvent, Int64)>.makeStream(bufferingPolicy: .unbounded)
        let runners = subscribe(
            run: run, runner: runner, replaysStored: false, yield: { continuation.yield(($0, $1)) },
            end: { continuation.finish() },
            onTermination: { cancel in continuation.onTermination = { _ in cancel() } })
        return RunOutputFollow(store: self, run: run, storedRunners: runners, live: stream)
    }

    /// Registers a follower of live output; with `replaysStored`, first passes it the stored output (under the
    /// lock, so that no chunk slips between). Returns the runners with stored output at that moment.
    @discardableResult
    private func subscribe(
        run: String, runner: String?, replaysStored: Bool = true,
        yield: @escaping @Sendable (FollowEvent, Int64) -> Void, end: @escaping @Sendable () -> Void,
        onTermination: (@escaping @Sendable () -> Void) -> Void
    ) -> [String] {
        let (runners, id): ([String], Int?) = state.withLock { state in
            let runners = runner.map { [$0] } ?? runnerNames(run: run, state: state)
            if replaysStored {
                for stored in outputs(run: run, runner: runner, state: state) {
                    for event in stored.events { yield(event, 0) }
                }
            }
            let isOver =
                state.completed.contains(run) || runner.map { state.finished[run]?.contains($0) == true } == true
            if isOver {
                end()
                return (runners, nil)
            }
            let id = state.nextFollower
            state.nextFollower += 1
            state.followers[id] = Follower(run: run, runner: runner, yield: yield, end: end)
            return (runners, id)
        }
        if let id {
            onTermination { [weak self] in self?.state.withLock { state in state.followers[id] = nil } }
        }
        return runners
    }

    /// How many followers of `run` are subscribed, for tests that must know a follower is listening.
    func followerCount(run: String) -> Int {
        state.withLock { state in state.followers.values.filter { $0.run == run }.count }
    }

    // MARK: Files

    private func runnerNames(run: String, state: State) -> [String] {
        var names = Set(state.live[run]?.keys.map { $0 } ?? [])
        let files = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory(run).path)) ?? []
        for file in files {
            for suffix in [".head", ".tail"] where file.hasSuffix(suffix) {
                if let name = String(file.dropLast(suffix.count)).removingPercentEncoding { names.insert(name) }
            }
        }
        return names.sorted()
    }

    private func runDirectory(_ run: String) -> URL {
        directory.appendingPathComponent(Self.fileName(run), isDirectory: true)
    }

    private func file(run: String, runner: String, suffix: String) -> URL {
        runDirectory(run).appendingPathComponent("\(Self.fileName(runner)).\(suffix)")
    }

    /// `name` as one safe path component (``OutputRecords/fileName(_:)``).
    static func fileName(_ name: String) -> String { OutputRecords.fileName(name) }

    private static func record(_ stream: RunOutputStream, _ bytes: [UInt8]) -> [UInt8] {
        OutputRecords.encode([OutputBuffer.Segment(stream: stream, bytes: bytes)])
    }

    /// The records of a file; a record cut by a crash and what follows it are lost.
    private static func records(_ data: ArraySlice<UInt8>) -> [OutputBuffer.Segment] {
        OutputRecords.decode(data).segments
    }

    private func createRunDirectory(_ run: String) {
        try? FileManager.default.createDirectory(
            at: runDirectory(run), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// Makes the run's directory once per run; notes whether it existed.
    private func ensureRunDirectory(_ run: String, in state: inout State) {
        guard !state.directories.contains(run) else { return }
        let path = runDirectory(run).path
        if mkdir(path, 0o700) == 0 {
            state.madeDirectories.insert(run)
        } else if errno != EEXIST {
            createRunDirectory(run)
            if FileManager.default.fileExists(atPath: path) { state.madeDirectories.insert(run) }
        }
        state.directories.insert(run)
    }

    private func appendRecord(_ bytes: [UInt8], stream: RunOutputStream, run: String, runner: String) {
        let url = file(run: run, runner: runner, suffix: "head")
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        _ = AtomicFile.writeAll(Self.record(stream, bytes), to: descriptor)
    }

    /// Rewrites the tail file: the total byte count (8 bytes, big-endian), then the tail's records.
    private func writeTail(_ live: LiveRunner, run: String, runner: String) {
        // Output that fits in the head needs no tail file: its count is the head's (most runs print little, and
        // creating files is what a thousand runners finishing at once would otherwise spend their time on).
        guard live.totalBytes > Int64(live.headWritten) || live.isHeadClosed else { return }
        createRunDirectory(run)
        let url = file(run: run, runner: runner, suffix: "tail")
        let temporary = url.appendingPathExtension("new")
        let total = UInt64(live.totalBytes)
        let data = OutputRecords.bigEndian(total, width: 8) + OutputRecords.encode(live.buffer.tail)
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        _ = AtomicFile.writeAll(data, to: descriptor)
        close(descriptor)
        _ = rename(temporary.path, url.path)
    }

    /// A runner's output as its files hold it; nil when it has none.
    private func read(run: String, runner: String) -> RunnerOutput? {
        let head = try? Data(contentsOf: file(run: run, runner: runner, suffix: "head"))
        let tail = try? Data(contentsOf: file(run: run, runner: runner, suffix: "tail"))
        guard head != nil || tail != nil else { return nil }
        let headSegments = Self.records(Array(head ?? Data())[...])
        let tailBytes = Array(tail ?? Data())
        let tailSegments = tailBytes.count >= 8 ? Self.records(tailBytes[8...]) : []
        let kept = Int64((headSegments + tailSegments).reduce(0) { $0 + $1.bytes.count })
        let total = tailBytes.count >= 8 ? OutputRecords.integer(tailBytes[..<8]) : 0
        return RunnerOutput(
            runner: runner, head: headSegments, tail: tailSegments, totalBytes: max(kept, Int64(clamping: total)))
    }

    /// A runner's live state rebuilt from its files (empty when it has none), so that output arriving after a
    /// restart continues what was stored.
    private func restore(run: String, runner: String) -> LiveRunner {
        var live = LiveRunner(buffer: OutputBuffer(limit: limitPerRunner))
        guard let stored = read(run: run, runner: runner) else { return live }
        for segment in stored.head { live.buffer.append(segment.bytes, from: segment.stream) }
        live.headWritten = stored.head.reduce(0) { $0 + $1.bytes.count }
        // A gap closed the head where it is; otherwise the tail continues it as before.
        if stored.droppedBytes > 0 && live.headWritten < headLimit {
            live.buffer.skip(stored.droppedBytes)
            live.headWritten = headLimit
            live.isHeadClosed = true
        } else {
            live.restoredDroppedBytes = stored.droppedBytes
        }
        for segment in stored.tail { live.buffer.append(segment.bytes, from: segment.stream) }
        return live
    }
}
