import Agent
import Foundation
import Logging
import Resources
import SteadyTesting
import Testing

/// The agent's backlog of unsent run output: bounded per run with head and tail kept, and kept on disk.
@Suite struct RunOutputBacklogTests {
    var logger: Logger {
        var logger = Logger(label: "run-output-backlog-test")
        logger.logLevel = .critical
        return logger
    }

    @Test func aBacklogKeepsTheHeadAndTailWithinItsLimit() {
        var backlog = RunOutputBacklog(stateDirectory: nil, logger: logger)
        backlog.append(Array("HEAD".utf8), from: .stdout, uid: "u1", sequence: 3, limit: 8)
        let middle = [UInt8](repeating: UInt8(ascii: "x"), count: 100_000)
        backlog.append(middle, from: .stdout, uid: "u1", sequence: 3, limit: 8)
        backlog.append(Array("TAIL".utf8), from: .stderr, uid: "u1", sequence: 3, limit: 8)
        let entry = backlog.take("u1")
        #expect(entry?.buffer.bytes(of: .stdout) == Array("HEAD".utf8))
        #expect(entry?.buffer.bytes(of: .stderr) == Array("TAIL".utf8))
        #expect(entry?.droppedBytes == 100_000)
        #expect(entry?.firstSequence == 3)
        #expect(backlog.holds("u1") == false)
    }

    @Test func aBacklogSurvivesARestartAndGoesOnceSent() throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-backlog")
        defer { directory.remove() }
        var backlog = RunOutputBacklog(stateDirectory: directory.path, logger: logger)
        backlog.append(Array("out\n".utf8), from: .stdout, uid: "run/1", sequence: 2, limit: 1024)
        backlog.append(Array("err\n".utf8), from: .stderr, uid: "run/1", sequence: 2, limit: 1024)
        backlog.flush("run/1")

        var reloaded = RunOutputBacklog(stateDirectory: directory.path, logger: logger)
        #expect(reloaded.runUIDs == ["run/1"])
        let taken = reloaded.take("run/1")
        let entry = try #require(taken)
        #expect(entry.buffer.segments.map(\.stream) == [.stdout, .stderr])
        #expect(entry.buffer.bytes() == Array("out\nerr\n".utf8))
        #expect(entry.firstSequence == 2)
        reloaded.remove("run/1")
        #expect(RunOutputBacklog(stateDirectory: directory.path, logger: logger).runUIDs.isEmpty)
    }

    @Test func anUnreadableBacklogFileIsDropped() throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-backlog")
        defer { directory.remove() }
        try FileManager.default.createDirectory(
            atPath: directory.path + "/run-output", withIntermediateDirectories: true)
        let file = directory.path + "/run-output/u1.backlog"
        #expect(FileManager.default.createFile(atPath: file, contents: Data([1, 2, 3])))
        #expect(RunOutputBacklog(stateDirectory: directory.path, logger: logger).runUIDs.isEmpty)
        #expect(FileManager.default.fileExists(atPath: file) == false)
    }

    @Test func backlogsOfRunsNoLongerReportedAreDropped() throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-backlog")
        defer { directory.remove() }
        var backlog = RunOutputBacklog(stateDirectory: directory.path, logger: logger)
        backlog.append([1], from: .stdout, uid: "keep", sequence: 0, limit: 16)
        backlog.append([2], from: .stdout, uid: "drop", sequence: 0, limit: 16)
        backlog.retain { $0 == "keep" }
        #expect(backlog.runUIDs == ["keep"])
        #expect(RunOutputBacklog(stateDirectory: directory.path, logger: logger).runUIDs == ["keep"])
    }
}
