import Foundation
import Resources
import SteadyTesting
import Testing

@testable import Reconciler

/// RemoteRun output on the controller: bounded, durable, followed.
@Suite(.timeLimit(.minutes(2))) struct RunOutputStoreTests {
    /// Bytes that differ along the output, so a wrong offset shows.
    static func pattern(from start: Int, count: Int) -> [UInt8] {
        (start..<(start + count)).map { UInt8(truncatingIfNeeded: $0 % 251) }
    }

    func withStore(
        limit: Int = RunProtocol.defaultMaximumOutputBytes, _ body: (RunOutputStore, URL) async throws -> Void
    )
        async throws
    {
        let directory = try TemporaryDirectory(prefix: "steady-run-output")
        defer { directory.remove() }
        try await body(RunOutputStore(directory: directory.url, limitPerRunner: limit), directory.url)
    }

    static func bytes(_ segments: [OutputBuffer.Segment]) -> [UInt8] { segments.flatMap(\.bytes) }

    static func filesSize(_ directory: URL) throws -> Int {
        let enumerator = FileManager.default.enumerator(
            at: directory, includingPropertiesForKeys: [.fileSizeKey, .isRegularFileKey])
        var total = 0
        while let url = enumerator?.nextObject() as? URL {
            let values = try url.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey])
            if values.isRegularFile == true { total += values.fileSize ?? 0 }
        }
        return total
    }

    @Test func thirtyMegabytesKeepTheLimitInMemoryAndOnDiskWithTheExactTail() async throws {
        try await withStore { store, directory in
            let limit = RunProtocol.defaultMaximumOutputBytes
            let total = 30 * 1024 * 1024
            var offset = 0
            while offset < total {
                let count = min(RunProtocol.maximumChunkBytes, total - offset)
                store.append(
                    run: "uid-1", runner: "web-1", stream: .stdout, bytes: Self.pattern(from: offset, count: count))
                offset += count
                if offset == total / 2 {
                    // While it runs, memory holds the limit and no more.
                    let kept = store.outputs(run: "uid-1", runner: "web-1").first
                    #expect(Self.bytes((kept?.head ?? []) + (kept?.tail ?? [])).count == limit)
                }
            }
            store.finish(run: "uid-1", runner: "web-1")
            let output = try #require(store.outputs(run: "uid-1", runner: "web-1").first)
            #expect(Self.bytes(output.head) == Self.pattern(from: 0, count: limit / 2))
            #expect(Self.bytes(output.tail) == Self.pattern(from: total - limit / 2, count: limit / 2))
            #expect(output.droppedBytes == Int64(total - limit))
            #expect(store.stats(run: "uid-1", runner: "web-1") == (Int64(total), true))
            // On disk: the kept bytes, plus 5 bytes a record and the 8-byte count.
            let size = try Self.filesSize(directory)
            #expect(size >= limit)
            #expect(size <= limit + limit / 4096 * 5 + 64)
            let files = try FileManager.default.contentsOfDirectory(
                atPath: directory.appendingPathComponent("uid-1").path)
            #expect(Set(files) == ["web-1.head", "web-1.tail"])
            let mode =
                try FileManager.default.attributesOfItem(
                    atPath: directory.appendingPathComponent("uid-1/web-1.tail").path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test func aRestartedStoreReadsWhatWasStoredAndContinuesIt() async throws {
        try await withStore(limit: 1000) { store, directory in
            store.append(run: "uid-1", runner: "web-1", stream: .stdout, bytes: Self.pattern(from: 0, count: 3000))
            store.append(run: "uid-1", runner: "web-1", stream: .stderr, bytes: Array("boom\n".utf8))
            store.append(run: "uid-1", runner: "db-1", stream: .stdout, bytes: Array("ok\n".utf8))
            store.finish(run: "uid-1", runner: "web-1")
            store.finish(run: "uid-1", runner: "db-1")
            let before = store.outputs(run: "uid-1", runner: nil)

            let reopened = RunOutputStore(directory: directory, limitPerRunner: 1000)
            #expect(reopened.outputs(run: "uid-1", runner: nil) == before)
            #expect(reopened.runners(run: "uid-1") == ["db-1", "web-1"])
            #expect(reopened.stats(run: "uid-1", runner: "web-1") == (3005, true))
            #expect(
                reopened.output(run: "uid-1", runner: "db-1").first?.segments == [
                    .init(stream: .stdout, bytes: Array("ok\n".utf8))
                ])

            // Output arriving after the restart continues the stored output.
            reopened.append(run: "uid-1", runner: "web-1", stream: .stdout, bytes: Array("more\n".utf8))
            let continued = try #require(reopened.outputs(run: "uid-1", runner: "web-1").first)
            #expect(continued.head == before.last?.head)
            #expect(continued.totalBytes == 3010)
            #expect(Array(Self.bytes(continued.tail).suffix(10)) == Array("boom\nmore\n".utf8))
            #expect(continued.tail.last?.stream == .stdout)
        }
    }

    @Test func followGetsTheStoredOutputThenLiveChunksAndEndsWhenTheRunnerFinishes() async throws {
        try await withStore(limit: 100) { store, _ in
            store.append(run: "uid-1", runner: "web-1", stream: .stdout, bytes: Self.pattern(from: 0, count: 150))
            store.append(run: "uid-1", runner: "db-1", stream: .stdout, bytes: Array("other\n".utf8))
            var events = store.followEvents(run: "uid-1", runner: "web-1").makeAsyncIterator()
            #expect(
                await events.next()
                    == .output(runner: "web-1", stream: .stdout, bytes: Self.pattern(from: 0, count: 50)))
            #expect(await events.next() == .dropped(runner: "web-1", bytes: 50))
            #expect(
                await events.next()
                    == .output(runner: "web-1", stream: .stdout, bytes: Self.pattern(from: 100, count: 50)))
            store.append(run: "uid-1", runner: "web-1", stream: .stderr, bytes: Array("live\n".utf8))
            store.append(run: "uid-1", runner: "db-1", stream: .stdout, bytes: Array("not followed\n".utf8))
            #expect(await events.next() == .output(runner: "web-1", stream: .stderr, bytes: Array("live\n".utf8)))
            store.finish(run: "uid-1", runner: "web-1")
            #expect(await events.next() == nil)

            // Output arriving between subscribing and reading the stored output comes once, with the stored.
            let late = store.followEvents(run: "uid-1", runner: "db-1")
            store.append(run: "uid-1", runner: "db-1", stream: .stdout, bytes: Array("late\n".utf8))
            store.finish(run: "uid-1", runner: "db-1")
            var texts: [String] = []
            for await event in late {
                if case .output(_, _, let bytes) = event { texts.append(String(decoding: bytes, as: UTF8.self)) }
            }
            #expect(texts.joined() == "other\nnot followed\nlate\n")
            // A finished runner's follower gets what is stored and ends at once.
            var again: [RunOutputStore.Chunk] = []
            for await chunk in store.follow(run: "uid-1", runner: "web-1") { again.append(chunk) }
            #expect(again.map(\.bytes).joined().count == 100)
            #expect(Array(again.map(\.bytes).joined().suffix(5)) == Array("live\n".utf8))
        }
    }

    @Test func aGapTheAgentDroppedIsShownBetweenTheHeadAndTheTail() async throws {
        try await withStore(limit: 100) { store, directory in
            var events = store.followEvents(run: "uid-1", runner: "web-1").makeAsyncIterator()
            let sent = Array("sent live\n".utf8)
            // After a reconnect, the agent's backlog: its head, the gap, its tail.
            store.append(run: "uid-1", runner: "web-1", stream: .stdout, bytes: sent)
            // Read as stored; what follows comes live.
            #expect(await events.next() == .output(runner: "web-1", stream: .stdout, bytes: sent))
            store.append(run: "uid-1", runner: "web-1", stream: .stdout, bytes: Self.pattern(from: 0, count: 30))
            store.drop(run: "uid-1", runner: "web-1", bytes: 500)
            store.append(run: "uid-1", runner: "web-1", stream: .stderr, bytes: Self.pattern(from: 530, count: 20))
            #expect(await events.next() == .output(runner: "web-1", stream: .stdout, bytes: Self.pattern(from: 0, count: 30)))
            #expect(await events.next() == .dropped(runner: "web-1", bytes: 500))
            #expect(await events.next() == .output(runner: "web-1", stream: .stderr, bytes: Self.pattern(from: 530, count: 20)))
            store.finish(run: "uid-1", runner: "web-1")
            #expect(await events.next() == nil)

            let output = try #require(store.outputs(run: "uid-1", runner: "web-1").first)
            #expect(Self.bytes(output.head) == sent + Self.pattern(from: 0, count: 30))
            #expect(Self.bytes(output.tail) == Self.pattern(from: 530, count: 20))
            #expect(output.droppedBytes == 500 && output.totalBytes == 560)
            #expect(output.events.firstIndex(of: .dropped(runner: "web-1", bytes: 500)) == output.head.count)
            let text = String(decoding: RunLogFormatter.text(of: [output], showsRunner: false), as: UTF8.self)
            #expect(text.contains("--- 500 bytes of output dropped ---"), "\(text)")
            // A restarted controller reads it the same, and output arriving then goes after the gap.
            let reopened = RunOutputStore(directory: directory, limitPerRunner: 100)
            #expect(reopened.outputs(run: "uid-1", runner: "web-1") == [output])
            reopened.append(run: "uid-1", runner: "web-1", stream: .stdout, bytes: Array("more\n".utf8))
            let continued = try #require(reopened.outputs(run: "uid-1", runner: "web-1").first)
            #expect(Self.bytes(continued.head) == Self.bytes(output.head) && continued.droppedBytes == 500)
            #expect(Array(Self.bytes(continued.tail).suffix(5)) == Array("more\n".utf8))
        }
    }

    @Test func followOfEveryRunnerEndsWhenTheRunCompletesOrIsDeleted() async throws {
        try await withStore { store, directory in
            store.append(run: "uid-1", runner: "web-1", stream: .stdout, bytes: Array("a\n".utf8))
            let all = store.follow(run: "uid-1", runner: nil)
            store.finish(run: "uid-1", runner: "web-1")
            // Another runner may start later (a batch): one runner finishing does not end it.
            store.append(run: "uid-1", runner: "web-2", stream: .stdout, bytes: Array("b\n".utf8))
            store.complete(run: "uid-1")
            var chunks: [String] = []
            for await chunk in all { chunks.append("\(chunk.runner):\(String(decoding: chunk.bytes, as: UTF8.self))") }
            #expect(chunks == ["web-1:a\n", "web-2:b\n"])

            store.append(run: "uid-2", runner: "web-1", stream: .stdout, bytes: Array("c\n".utf8))
            let deleted = store.follow(run: "uid-2", runner: "web-1")
            #expect(store.followerCount(run: "uid-2") == 1)
            store.delete(run: "uid-2")
            var count = 0
            for await _ in deleted { count += 1 }
            #expect(count == 1)
            #expect(store.output(run: "uid-2", runner: nil).isEmpty)
            #expect(store.stats(run: "uid-2", runner: "web-1") == (0, false))
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("uid-2").path))
            #expect(store.followerCount(run: "uid-2") == 0)
        }
    }

    @Test func namesThatAreNotPlainBecomeSafeFileNames() {
        #expect(RunOutputStore.fileName("web-1") == "web-1")
        #expect(RunOutputStore.fileName("../etc") == "%2E%2E%2Fetc")
        #expect(RunOutputStore.fileName("") == "%00")
    }
}
