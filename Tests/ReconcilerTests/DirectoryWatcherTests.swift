import Foundation
import Reconciler
import Synchronization
import Testing

/// The snapshots a running watcher reported, for tests to wait on.
private final class SnapshotLog: Sendable {
    private let snapshots = Mutex<[DirectorySnapshot]>([])

    var count: Int { snapshots.withLock { $0.count } }
    var all: [DirectorySnapshot] { snapshots.withLock { $0 } }

    func append(_ snapshot: DirectorySnapshot) {
        snapshots.withLock { $0.append(snapshot) }
    }

    /// The first snapshot after the first `skipping` ones that satisfies `predicate`, waiting at most `timeout`.
    func wait(
        skipping: Int, timeout: Duration = .seconds(10), _ predicate: (DirectorySnapshot) -> Bool = { _ in true }
    ) async -> DirectorySnapshot? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let found = snapshots.withLock { $0.dropFirst(skipping).first(where: predicate) }
            if let found { return found }
            guard ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// How a `run` ended, set from the task that ran it.
private final class Outcome: Sendable {
    private let text = Mutex<String?>(nil)

    var value: String? { text.withLock { $0 } }

    func set(_ value: String) {
        text.withLock { $0 = value }
    }
}

/// A consumer that keeps its state in an actor: `run` inherits the actor, so the closure can touch that state.
private actor Collector {
    var snapshots: [DirectorySnapshot] = []

    func watch(_ watcher: DirectoryWatcher) async throws {
        try await watcher.run { snapshot in
            snapshots.append(snapshot)
        }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct DirectoryWatcherTests {
    /// A fresh directory with the given files, removed by the caller.
    private func makeDirectory(_ files: [String: String] = [:]) throws -> URL {
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("watcher-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for (path, content) in files {
            try write(content, to: root.appendingPathComponent(path))
        }
        return root
    }

    private func write(_ content: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(content.utf8).write(to: url)
    }

    /// Runs a watcher on `directory` (rescans rare, so only inotify can explain a report) while `body` runs,
    /// after its first report; then cancels it and waits for `run` to return.
    private func withWatcher(
        _ directory: URL,
        debounce: Duration = .milliseconds(150),
        rescanInterval: Duration = .seconds(120),
        _ body: (SnapshotLog) async throws -> Void
    ) async throws {
        let log = SnapshotLog()
        let watcher = DirectoryWatcher(directory: directory, debounce: debounce, rescanInterval: rescanInterval)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await watcher.run { log.append($0) }
            }
            do {
                let initial = await log.wait(skipping: 0)
                try #require(initial != nil, "no report at start")
                try await body(log)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    @Test func reportsAtStartWithFilesAndWithoutHiddenOnes() async throws {
        let directory = try makeDirectory(["a.yaml": "kind: A\n", "sub/b.yaml": "kind: B\n", ".swap": "x"])
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withWatcher(directory) { log in
            let first = try #require(log.all.first)
            #expect(Set(first.files.keys) == ["a.yaml", "sub/b.yaml"])
            #expect(first.files["a.yaml"]?.size == 8)
        }
    }

    @Test func createdFileIsReported() async throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withWatcher(directory) { log in
            let seen = log.count
            try write("kind: A\n", to: directory.appendingPathComponent("a.yaml"))
            #expect(await log.wait(skipping: seen) { $0.files["a.yaml"] != nil } != nil)
        }
    }

    @Test func modifiedFileIsReported() async throws {
        let directory = try makeDirectory(["a.yaml": "kind: A\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withWatcher(directory) { log in
            let seen = log.count
            let handle = try FileHandle(forWritingTo: directory.appendingPathComponent("a.yaml"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("spec: {}\n".utf8))
            try handle.close()
            #expect(await log.wait(skipping: seen) { $0.files["a.yaml"]?.size == 17 } != nil)
        }
    }

    @Test func deletedFileIsReported() async throws {
        let directory = try makeDirectory(["a.yaml": "kind: A\n", "b.yaml": "kind: B\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withWatcher(directory) { log in
            let seen = log.count
            try FileManager.default.removeItem(at: directory.appendingPathComponent("a.yaml"))
            let snapshot = await log.wait(skipping: seen) { $0.files["a.yaml"] == nil }
            #expect(snapshot.map { Set($0.files.keys) } == ["b.yaml"])
        }
    }

    @Test func fileRenamedOverIsReported() async throws {
        let directory = try makeDirectory(["a.yaml": "kind: A\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withWatcher(directory) { log in
            let before = try #require(log.all.first?.files["a.yaml"])
            let seen = log.count
            // As editors save: write a temporary file, then rename it over the original.
            let temporary = directory.appendingPathComponent(".a.yaml.tmp")
            try write("kind: A2\n", to: temporary)
            #expect(rename(temporary.path, directory.appendingPathComponent("a.yaml").path) == 0)
            let snapshot = await log.wait(skipping: seen) { $0.files["a.yaml"]?.inode != before.inode }
            #expect(snapshot?.files["a.yaml"]?.size == 9)
            #expect(snapshot?.files[".a.yaml.tmp"] == nil)
        }
    }

    @Test func fileMovedInIsReported() async throws {
        let directory = try makeDirectory()
        let outside = try makeDirectory(["c.yaml": "kind: C\n"])
        defer {
            try? FileManager.default.removeItem(at: directory)
            try? FileManager.default.removeItem(at: outside)
        }
        try await withWatcher(directory) { log in
            let seen = log.count
            try FileManager.default.moveItem(
                at: outside.appendingPathComponent("c.yaml"), to: directory.appendingPathComponent("c.yaml")
            )
            #expect(await log.wait(skipping: seen) { $0.files["c.yaml"] != nil } != nil)
        }
    }

    @Test func newSubdirectoriesAreWatched() async throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withWatcher(directory) { log in
            var seen = log.count
            let file = directory.appendingPathComponent("sub/deeper/d.yaml")
            try write("kind: D\n", to: file)
            #expect(await log.wait(skipping: seen) { $0.files["sub/deeper/d.yaml"] != nil } != nil)

            // Only a watch on the new directory can report this change, rescans being two minutes apart.
            seen = log.count
            try write("kind: D\nspec: {}\n", to: file)
            #expect(await log.wait(skipping: seen) { $0.files["sub/deeper/d.yaml"]?.size == 17 } != nil)
        }
    }

    @Test func directoryMovedInIsWatched() async throws {
        let directory = try makeDirectory()
        let outside = try makeDirectory(["tree/e.yaml": "kind: E\n"])
        defer {
            try? FileManager.default.removeItem(at: directory)
            try? FileManager.default.removeItem(at: outside)
        }
        try await withWatcher(directory) { log in
            var seen = log.count
            try FileManager.default.moveItem(
                at: outside.appendingPathComponent("tree"), to: directory.appendingPathComponent("tree")
            )
            #expect(await log.wait(skipping: seen) { $0.files["tree/e.yaml"] != nil } != nil)

            seen = log.count
            try FileManager.default.removeItem(at: directory.appendingPathComponent("tree/e.yaml"))
            #expect(await log.wait(skipping: seen) { $0.files["tree/e.yaml"] == nil } != nil)
        }
    }

    @Test func burstOfWritesIsReportedOnce() async throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withWatcher(directory, debounce: .seconds(1)) { log in
            let seen = log.count
            let file = directory.appendingPathComponent("a.yaml")
            // Writes 10 ms apart: each gap is far inside the debounce, so together they are one burst.
            for step in 1...8 {
                try write(String(repeating: "#", count: step) + "\n", to: file)
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(await log.wait(skipping: seen) { $0.files["a.yaml"]?.size == 9 } != nil)
            try await Task.sleep(for: .milliseconds(1500))
            // One report, or two if a pause on a loaded machine split the burst; without debouncing it is 3 or more.
            #expect((1...2).contains(log.count - seen))
        }
    }

    @Test func rescansReportWithoutEvents() async throws {
        let directory = try makeDirectory(["a.yaml": "kind: A\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withWatcher(directory, rescanInterval: .milliseconds(300)) { log in
            let snapshot = await log.wait(skipping: 2)
            #expect(snapshot != nil)
            #expect(snapshot == log.all.first)
        }
    }

    @Test func cancellationEndsRun() async throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = SnapshotLog()
        let outcome = Outcome()
        let watcher = DirectoryWatcher(directory: directory)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await watcher.run { log.append($0) }
                    outcome.set("returned")
                } catch {
                    outcome.set("threw \(error)")
                }
            }
            _ = await log.wait(skipping: 0)
            group.cancelAll()
            // Only the child is cancelled: this task can still wait, with a bound.
            let deadline = ContinuousClock.now + .seconds(2)
            while outcome.value == nil && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            #expect(outcome.value == "returned", "run did not return within 2 s of cancellation")
        }
        #expect(log.count == 1)
    }

    @Test func consumerCanBeAnActor() async throws {
        let directory = try makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let collector = Collector()
        let watcher = DirectoryWatcher(directory: directory, rescanInterval: .seconds(120))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await collector.watch(watcher) }
            let deadline = ContinuousClock.now + .seconds(10)
            while await collector.snapshots.isEmpty && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            try write("kind: A\n", to: directory.appendingPathComponent("a.yaml"))
            let secondDeadline = ContinuousClock.now + .seconds(10)
            while await collector.snapshots.last?.files["a.yaml"] == nil && ContinuousClock.now < secondDeadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            group.cancelAll()
            try await group.waitForAll()
        }
        let snapshots = await collector.snapshots
        #expect(snapshots.first?.files.isEmpty == true)
        #expect(snapshots.last?.files["a.yaml"] != nil)
    }

    @Test func missingDirectoryIsAnErrorNamingIt() async throws {
        let directory = URL(fileURLWithPath: "/nonexistent/watched-\(UUID().uuidString)")
        let watcher = DirectoryWatcher(directory: directory)
        do {
            try await watcher.run { _ in }
            Issue.record("expected an error")
        } catch let error as DirectoryWatcherError {
            #expect(error.path == directory.path)
            #expect(error.description.contains(directory.path))
            #expect(error.description.contains("does not exist"))
        }
    }

    @Test func removedDirectoryEndsRunWithError() async throws {
        let directory = try makeDirectory(["a.yaml": "kind: A\n"])
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = SnapshotLog()
        let watcher = DirectoryWatcher(directory: directory)
        let outcome = await withTaskGroup(of: String.self) { group in
            group.addTask {
                do {
                    try await watcher.run { log.append($0) }
                    return "returned"
                } catch {
                    return "\(error)"
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(3))
                return "timed out"
            }
            _ = await log.wait(skipping: 0)
            try? FileManager.default.removeItem(at: directory)
            let first = await group.next() ?? "none"
            group.cancelAll()
            return first
        }
        #expect(outcome.contains("does not exist"))
        #expect(log.all.allSatisfy { !$0.files.isEmpty }, "an empty snapshot was reported for a removed directory")
    }
}
