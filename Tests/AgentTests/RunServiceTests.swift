import Agent
import Foundation
import Logging
import Resources
import SteadyTesting
import Testing

/// The agent's run service with real processes and a recording stream: the messages a controller sees, one start
/// per run UID, results kept for a later stream until acknowledged.
@Suite(.timeLimit(.minutes(5))) struct RunServiceTests {
    /// What a controller would have received.
    actor Stream {
        var messages: [RunAgentMessage] = []
        /// Whether sends fail, as on a stream going away: nothing is recorded then.
        var isFailing = false
        @discardableResult func record(_ message: RunAgentMessage) -> Bool {
            guard !isFailing else { return false }
            messages.append(message)
            return true
        }
        func fail() { isFailing = true }
        var types: [String] {
            messages.map {
                switch $0 {
                case .accepted: "accepted"
                case .started: "started"
                case .output: "output"
                case .result: "result"
                case .refused: "refused"
                }
            }
        }
        var results: [RunResult] { messages.compactMap { if case .result(let result) = $0 { result } else { nil } } }
        var output: String {
            String(
                decoding: messages.compactMap { if case .output(let chunk) = $0 { chunk.bytes } else { nil } }.flatMap {
                    $0
                },
                as: UTF8.self)
        }
        var sequences: [Int64] {
            messages.compactMap { if case .output(let chunk) = $0 { chunk.sequence } else { nil } }
        }
    }

    var logger: Logger {
        var logger = Logger(label: "run-service-test")
        logger.logLevel = .critical
        return logger
    }

    func makeService(
        _ directory: TemporaryDirectory, allowsExec: Bool = true,
        runCommand: [String] = ["/bin/sh", "-c", "echo own-command"]
    ) throws -> RunService {
        let executor = RunExecutor(
            configuration: .init(
                runner: "web-1", runCommand: runCommand, allowsExec: allowsExec,
                killGracePeriod: .milliseconds(300)))
        return RunService(
            executor: executor, ledger: try RunLedger(directory: directory.path, logger: logger),
            stateDirectory: directory.path, logger: logger)
    }

    /// Runs `service` while `body` runs.
    func withService(_ service: RunService, _ body: @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await service.run() }
            defer { group.cancelAll() }
            try await body()
        }
    }

    /// A running service on `directory`, connected to a recording stream, while `body` runs.
    func withConnectedService(
        in directory: TemporaryDirectory, allowsExec: Bool = true,
        _ body: @Sendable (RunService, Stream) async throws -> Void
    ) async throws {
        let service = try makeService(directory, allowsExec: allowsExec)
        let stream = Stream()
        try await withService(service) {
            await service.connected { await stream.record($0) }
            try await body(service, stream)
        }
    }

    /// Starts run `u1`, which prints a line and then runs for 30 s, and waits for its line.
    func startLongRun(_ service: RunService, _ stream: Stream) async {
        await service.handle(Self.request("u1", ["/bin/sh", "-c", "echo going; sleep 30"]))
        #expect(await eventually { await stream.output == "going\n" })
    }

    static func request(_ uid: String, _ command: [String]? = nil) -> RunControllerMessage {
        .request(RunRequest(runUID: uid, runName: "inventory", conditions: ["force"], command: command))
    }

    @Test func aRequestIsAcceptedStartedStreamedAndReported() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        try await withConnectedService(in: directory) { service, stream in
            await service.handle(Self.request("u1", ["/bin/sh", "-c", "echo out; echo err >&2"]))
            #expect(await eventually { await stream.results.count == 1 })
            let types = await stream.types
            #expect(types.first == "accepted" && types[1] == "started" && types.last == "result")
            #expect(types.filter { $0 == "output" }.count == 2)
            #expect(await stream.sequences == [0, 1])
            #expect(await stream.results.first?.phase == .succeeded)
            #expect(await stream.results.first?.outputBytes == 8)
        }
    }

    @Test func theSameUIDNeverStartsTwice() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        let marker = directory.path + "/starts"
        let command = ["/bin/sh", "-c", "echo x >> \(marker); sleep 0.3"]
        try await withConnectedService(in: directory) { service, stream in
            await service.handle(Self.request("u1", command))
            await service.handle(Self.request("u1", command))  // a repeat while it runs
            #expect(await eventually { await stream.results.count == 1 })
            await service.handle(Self.request("u1", command))  // a repeat after it finished
            #expect(await eventually { await stream.results.count == 2 })
            #expect(await stream.types.filter { $0 == "started" }.count == 1)
        }
        // Another service on the same state directory, as after an agent restart.
        try await withConnectedService(in: directory) { restarted, later in
            await restarted.handle(Self.request("u1", command))
            #expect(await eventually { await later.results.count >= 2 })
            #expect(await later.types.contains("started") == false)
        }
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "x\n")
    }

    @Test func resultsFinishedWhileDisconnectedAreSentUntilAcknowledged() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        let service = try makeService(directory)
        try await withService(service) {
            let first = Stream()
            await service.connected { await first.record($0) }
            await service.handle(Self.request("u1", ["/bin/sh", "-c", "sleep 0.2; echo done"]))
            await service.disconnected()
            #expect(await eventually { await service.runningUIDs.isEmpty })
            #expect(await first.results.isEmpty)

            let second = Stream()
            await service.connected { await second.record($0) }
            #expect(await second.results.map(\.runUID) == ["u1"])
            #expect(await second.results.first?.phase == .succeeded)
            await service.handle(.acknowledge(RunAcknowledge(runUID: "u1")))

            let third = Stream()
            await service.connected { await third.record($0) }
            #expect(await third.messages.isEmpty)
        }
    }

    @Test func anExplicitCommandWithoutAllowExecIsRefusedAndKept() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        try await withConnectedService(in: directory, allowsExec: false) { service, stream in
            await service.handle(Self.request("u1", ["/bin/echo", "no"]))
            #expect(await stream.types == ["refused"])
            guard case .refused(let refusal) = await stream.messages.first else { return }
            #expect(refusal.reason == .execNotAllowed)
            // Its own run command still runs.
            await service.handle(Self.request("u2"))
            #expect(await eventually { await stream.results.count == 1 })
            #expect(await stream.output == "own-command\n")
            let again = Stream()
            await service.connected { await again.record($0) }
            #expect(await again.results.map(\.phase) == [.refused, .succeeded])
        }
    }

    @Test func aCancelStopsTheRun() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        try await withConnectedService(in: directory) { service, stream in
            await startLongRun(service, stream)
            await service.handle(.cancel(RunCancel(runUID: "u1")))
            #expect(await eventually { await stream.results.count == 1 })
            #expect(await stream.results.first?.phase == .cancelled)
        }
    }

    @Test func stoppingTheAgentStopsItsRunsAndKeepsTheirResults() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        try await withConnectedService(in: directory) { service, stream in
            await startLongRun(service, stream)
        }
        // run() returned: the process group was stopped and the result recorded for the next start.
        let restarted = try makeService(directory)
        let later = Stream()
        await restarted.connected { await later.record($0) }
        #expect(await later.results.map(\.phase) == [.cancelled])
        #expect(await later.results.first?.reason == "AgentStopped")
    }

    /// A command that prints `first`, waits until `gate` exists, then prints `second` and `third`.
    static func gatedCommand(_ gate: String) -> [String] {
        ["/bin/sh", "-c", "echo first; while [ ! -e \(gate) ]; do sleep 0.02; done; echo second; echo third"]
    }

    @Test func outputWrittenWhileDisconnectedIsSentOnTheNextStreamBeforeTheResult() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        let gate = directory.path + "/gate"
        let service = try makeService(directory)
        try await withService(service) {
            let first = Stream()
            await service.connected { await first.record($0) }
            await service.handle(Self.request("u1", Self.gatedCommand(gate)))
            #expect(await eventually { await first.output == "first\n" })
            await service.disconnected()
            #expect(FileManager.default.createFile(atPath: gate, contents: nil))
            #expect(await eventually { await service.runningUIDs.isEmpty })
            #expect(await first.output == "first\n")

            let second = Stream()
            await service.connected { await second.record($0) }
            // Kept as one piece (the backlog joins output of one stream), numbered after what was sent.
            #expect(await second.types == ["output", "result"])
            #expect(await second.output == "second\nthird\n")
            #expect(await second.sequences == [1])
            #expect(await second.results.first?.outputBytes == 19)
            // Sent once: the next stream gets only the result again.
            let third = Stream()
            await service.connected { await third.record($0) }
            #expect(await third.types == ["result"])
        }
    }

    @Test func outputWhoseSendFailedIsSentAgainOnTheNextStream() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        let gate = directory.path + "/gate"
        let service = try makeService(directory)
        try await withService(service) {
            let first = Stream()
            await service.connected { await first.record($0) }
            await service.handle(Self.request("u1", Self.gatedCommand(gate)))
            #expect(await eventually { await first.output == "first\n" })
            // The stream breaks before the agent notices it is gone.
            await first.fail()
            #expect(FileManager.default.createFile(atPath: gate, contents: nil))
            #expect(await eventually { await service.runningUIDs.isEmpty })
            await service.disconnected()

            let second = Stream()
            await service.connected { await second.record($0) }
            #expect(await second.types == ["output", "result"])
            #expect(await second.output == "second\nthird\n")
        }
    }

    @Test func outputKeptWhileDisconnectedSurvivesAnAgentRestart() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        let gate = directory.path + "/gate"
        let command = ["/bin/sh", "-c", "echo first; while [ ! -e \(gate) ]; do sleep 0.02; done; echo kept; sleep 30"]
        try await withConnectedService(in: directory) { service, stream in
            await service.handle(Self.request("u1", command))
            #expect(await eventually { await stream.output == "first\n" })
            await service.disconnected()
            #expect(FileManager.default.createFile(atPath: gate, contents: nil))
            // The async `eventually`: the blocking one would hold a thread the service needs.
            #expect(await eventually { () async -> Bool in
                (try? FileManager.default.contentsOfDirectory(atPath: directory.path + "/run-output"))?.isEmpty == false
            })
        }
        // The agent stopped while disconnected: the next one sends the kept output, then the result.
        let restarted = try makeService(directory)
        let later = Stream()
        await restarted.connected { await later.record($0) }
        let types = await later.types
        #expect(types == ["output", "result"], "\(types)")
        #expect(await later.output == "kept\n")
        #expect(await later.results.first?.reason == "AgentStopped")
        await restarted.handle(.acknowledge(RunAcknowledge(runUID: "u1")))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: directory.path + "/run-output")) == [])
    }

    /// A scheduled run's request, as ``RunSchedule/request(startingAt:)`` makes it.
    static func scheduled(_ milliseconds: Int64) -> RunRequest {
        RunRequest(runUID: "\(RunSchedule.runUIDPrefix)\(milliseconds)", runName: "schedule")
    }

    @Test func outputOfAScheduledRunWrittenWhileDisconnectedIsSentOnTheNextStream() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        let gate = directory.path + "/gate"
        let service = try makeService(directory, runCommand: Self.gatedCommand(gate))
        let first = Stream()
        await service.connected { await first.record($0) }
        async let result = service.runScheduled(Self.scheduled(1_000))
        #expect(await eventually { await first.output == "first\n" })
        await service.disconnected()
        #expect(FileManager.default.createFile(atPath: gate, contents: nil))
        #expect(await result?.phase == .succeeded)
        #expect(await first.types == ["started", "output"])

        let second = Stream()
        await service.connected { await second.record($0) }
        // The kept output, numbered after what was sent, then the result that ends the controller's copy.
        #expect(await second.types == ["output", "result"])
        #expect(await second.output == "second\nthird\n")
        #expect(await second.sequences == [1])
        // Sent once.
        let third = Stream()
        await service.connected { await third.record($0) }
        #expect(await third.types.isEmpty)
    }

    @Test func aScheduledRunThatRanWhileDisconnectedIsSentWithItsStartAcrossARestart() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        let service = try makeService(directory, runCommand: ["/bin/sh", "-c", "echo older"])
        _ = await service.runScheduled(Self.scheduled(1_000))
        let replaced = try makeService(directory, runCommand: ["/bin/sh", "-c", "echo scheduled; sleep 0.1; echo oops >&2"])
        #expect(await replaced.runScheduled(Self.scheduled(2_000))?.phase == .succeeded)

        // Only the latest scheduled run's output is kept, and an agent restart keeps it.
        let restarted = try makeService(directory)
        let stream = Stream()
        await restarted.connected { await stream.record($0) }
        #expect(await stream.types == ["started", "output", "output", "result"])
        #expect(await stream.output == "scheduled\noops\n")
        #expect(await stream.messages.allSatisfy { $0.runUID == Self.scheduled(2_000).runUID })
    }

    @Test func outputDroppedFromTheBacklogIsMarkedWhereItWas() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-run-service")
        defer { directory.remove() }
        let gate = directory.path + "/gate"
        let service = try makeService(directory)
        // 100 lines of 10 bytes while disconnected, kept in 200 bytes: 100 of head, 100 of tail.
        let command = [
            "/bin/sh", "-c",
            "echo first; while [ ! -e \(gate) ]; do sleep 0.02; done; i=100; while [ $i -lt 200 ]; do echo line-$i.; "
                + "i=$((i+1)); done",
        ]
        try await withService(service) {
            let first = Stream()
            await service.connected { await first.record($0) }
            await service.handle(
                .request(RunRequest(runUID: "u1", runName: "inventory", command: command, maxOutputBytes: 200)))
            #expect(await eventually { await first.output == "first\n" })
            await service.disconnected()
            #expect(FileManager.default.createFile(atPath: gate, contents: nil))
            #expect(await eventually { await service.runningUIDs.isEmpty })

            let second = Stream()
            await service.connected { await second.record($0) }
            let chunks = await second.messages.compactMap { if case .output(let chunk) = $0 { chunk } else { nil } }
            // The head goes unmarked; the tail's first chunk carries the 800 bytes dropped before it.
            #expect(chunks.map(\.droppedBefore) == [nil, 800], "\(chunks)")
            #expect(chunks.first?.bytes.map { String(decoding: $0, as: UTF8.self) }?.hasPrefix("line-100.\n") == true)
            #expect(chunks.last?.bytes.map { String(decoding: $0, as: UTF8.self) }?.hasSuffix("line-199.\n") == true)
            #expect(await second.results.first?.outputBytes == 1_006)
        }
    }
}
