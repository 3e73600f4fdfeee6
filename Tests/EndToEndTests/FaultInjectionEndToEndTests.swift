import Foundation
import Resources
import SteadyTesting
import Testing

/// Faults injected into real processes on loopback: a frozen controller, damaged agent state, a full disk under the
/// controller's store and a credential revoked mid-stream. Each test proves that nothing acknowledged is lost and
/// that the system recovers by itself. A test that needs root or a kernel facility checks for it first and is
/// skipped, with the reason, where it is missing.
@Suite(.serialized, .timeLimit(.minutes(5))) struct FaultInjectionEndToEndTests: RemoteRunReading {

    /// A runner-local webhook action to `sink` and a route to it, assigned to `runner`.
    static func localRoute(runner: String, sink: EventSink) -> String {
        EventEndToEndTests.action("to-sink", "{type: webhook, webhook: {url: 'http://127.0.0.1:\(sink.port)/local'}}")
            + EventEndToEndTests.route("local", "{input: 'has(input.n)', actions: [to-sink]}")
                + """
                apiVersion: steady.dev/v1
                kind: Assignment
                metadata: {name: on-\(runner)}
                spec: {runners: [\(runner)], routes: [local], actions: [to-sink]}

                """
    }

    /// How many times the sink received event `n`.
    static func deliveries(of n: Int, in sink: EventSink) -> Int {
        sink.requests.filter { $0.body == #"{"n":\#(n)}"# }.count
    }

    /// Starts an agent that runs commands and takes events on a port of its own, and waits until it serves the
    /// route of ``localRoute(runner:sink:)`` (an event posted to it reaches the sink).
    static func startEventAgent(_ name: String, controller: ControllerProcess, sink: EventSink) async throws
        -> (agent: AgentProcess, port: Int)
    {
        let port = try EventEndToEndTests.freePort()
        let agent = try AgentProcess(name: name)
        try agent.start(
            controller: controller, joinToken: try controller.joinToken(), allowExec: true,
            extraArguments: ["--events-listen", "127.0.0.1:\(port)"])
        #expect(await EventEndToEndTests.waitUntil { agent.sliceKeys().contains("Route/local") }, "\(agent.log())")
        // Probe until the agent's route table holds the route.
        var probes = 0
        while Self.deliveries(of: 0, in: sink) == 0 && probes < 100 {
            _ = try? await EventEndToEndTests.post(#"{"n":0}"#, port: port)
            try await Task.sleep(for: .milliseconds(200))
            probes += 1
        }
        #expect(Self.deliveries(of: 0, in: sink) > 0, "the agent never delivered the probe event\n\(agent.log())")
        return (agent, port)
    }

    func isFinal(_ phase: String?) -> Bool { ["Succeeded", "Failed"].contains(phase ?? "") }

    /// A RemoteRun on `runner` that appends a line to `starts` when it starts, then sleeps `seconds`.
    static func countedRun(_ name: String, runner: String, starts: URL, seconds: Int) -> String {
        """
        apiVersion: steady.dev/v1
        kind: RemoteRun
        metadata: {name: \(name)}
        spec:
          target: {runners: [\(runner)]}
          command: [/bin/sh, -c, "echo started >> \(starts.path); sleep \(seconds); exit 0"]
        """
    }

    // MARK: A frozen controller

    @Test func aFrozenControllerLosesNothingAndDuplicatesNothing() async throws {
        let sink = try await EventSink()
        defer { sink.stop() }
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        try controller.apply(Self.localRoute(runner: "frozen-1", sink: sink))
        let (agent, port) = try await Self.startEventAgent("frozen-1", controller: controller, sink: sink)
        defer { agent.remove() }
        let scratch = try TemporaryDirectory(prefix: "steady-frozen")
        defer { scratch.remove() }

        // A run starts before the freeze and ends during it: its result is reported after the thaw, once.
        let starts = scratch.file("starts")
        try controller.apply(Self.countedRun("before-freeze", runner: "frozen-1", starts: starts, seconds: 5))
        #expect(await EventEndToEndTests.waitUntil { !FaultEnvironment.lines(of: starts).isEmpty }, "\(agent.log())")
        #expect(
            await EventEndToEndTests.waitUntil {
                FaultEnvironment.runnerCondition(controller, "frozen-1", "Synced") == "True"
            })
        let sliceBefore = agent.sliceText()

        // Frozen for longer than the controller's heartbeat timeout (15 s).
        let frozen = ContinuousClock.now
        controller.signal(SIGSTOP)
        defer { controller.signal(SIGCONT) }
        // The agent keeps acting on its slice meanwhile: events it takes reach the runner's own action.
        for n in 1...5 {
            let answer = try await EventEndToEndTests.post(#"{"n":\#(n)}"#, port: port)
            #expect(answer.status == 202, "\(answer.body)")
        }
        #expect(
            await EventEndToEndTests.waitUntil { (1...5).allSatisfy { Self.deliveries(of: $0, in: sink) == 1 } },
            "the agent stopped acting while the controller was frozen\n\(agent.log())")
        try await Task.sleep(until: frozen + .seconds(20))
        #expect(agent.isRunning, "\(agent.log())")
        #expect(agent.sliceText() == sliceBefore, "the agent's slice changed while the controller was frozen")
        controller.signal(SIGCONT)

        // After the thaw: the run is reported once and not started again, the runner is connected and in sync,
        // and the stream carries changes again.
        #expect(
            await EventEndToEndTests.waitUntil(timeout: .seconds(30)) {
                isFinal(status(controller, "before-freeze")?["phase"]?.stringValue)
            },
            "\(String(describing: status(controller, "before-freeze")))\n\(agent.log())")
        #expect(result(status(controller, "before-freeze"), "frozen-1")?["phase"] == "Succeeded")
        #expect(
            FaultEnvironment.lines(of: starts).count == 1,
            "the run started \(FaultEnvironment.lines(of: starts).count) times")
        try controller.apply(
            EventEndToEndTests.route("after-thaw", "{input: 'has(input.m)', actions: [to-sink]}")
                + """
                apiVersion: steady.dev/v1
                kind: Assignment
                metadata: {name: on-frozen-1}
                spec: {runners: [frozen-1], routes: [local, after-thaw], actions: [to-sink]}
                """)
        #expect(
            await EventEndToEndTests.waitUntil { agent.sliceKeys().contains("Route/after-thaw") },
            "the agent did not get the change made after the thaw\n\(agent.log())")
        #expect(
            await EventEndToEndTests.waitUntil {
                FaultEnvironment.runnerCondition(controller, "frozen-1", "Connected") == "True"
                    && FaultEnvironment.runnerCondition(controller, "frozen-1", "Synced") == "True"
            }, "\(controller.log())")
        // Nothing delivered twice, and the agent never restarted.
        #expect((1...5).allSatisfy { Self.deliveries(of: $0, in: sink) == 1 })
        #expect(agent.log().components(separatedBy: "agent starting").count == 2, "\(agent.log())")
    }

    // MARK: Damaged agent state

    /// How the agent's files are damaged while it is stopped.
    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        /// Cut to half their length, as by a crash during a copy or a full disk.
        case truncated
        /// Overwritten with bytes that are not what the file should hold.
        case overwritten

        var testDescription: String { rawValue }

        func apply(to file: URL) throws {
            let data = try Data(contentsOf: file)
            switch self {
            case .truncated: try data.prefix(data.count / 2).write(to: file)
            case .overwritten: try Data(repeating: 0x5A, count: max(data.count, 4096)).write(to: file)
            }
        }
    }

    @Test(arguments: Damage.allCases)
    func aDamagedSliceLedgerAndOutboxAreSetAsideAndRebuilt(damage: Damage) async throws {
        let sink = try await EventSink()
        defer { sink.stop() }
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        try controller.apply(Self.localRoute(runner: "damaged-1", sink: sink))
        let (agent, port) = try await Self.startEventAgent("damaged-1", controller: controller, sink: sink)
        defer { agent.remove() }
        let scratch = try TemporaryDirectory(prefix: "steady-damaged")
        defer { scratch.remove() }
        let starts = scratch.file("starts")
        try controller.apply(Self.countedRun("done-before", runner: "damaged-1", starts: starts, seconds: 0))
        #expect(
            await EventEndToEndTests.waitUntil { isFinal(status(controller, "done-before")?["phase"]?.stringValue) },
            "\(String(describing: status(controller, "done-before")))")
        let keysBefore = agent.sliceKeys()
        #expect(keysBefore.contains("Route/local"))

        agent.stop()
        let state = agent.stateDirectory
        for name in ["slice.json", "runs.log", "events.db"] {
            #expect(FileManager.default.fileExists(atPath: state.file(name).path), "no \(name) to damage")
            try damage.apply(to: state.file(name))
        }
        try agent.start(
            controller: controller, joinToken: nil, allowExec: true,
            extraArguments: ["--events-listen", "127.0.0.1:\(port)"])

        // Once the agent is up again (listening a second time) or has ended: each damaged file is set aside with
        // a logged reason, and the agent goes on.
        #expect(
            await EventEndToEndTests.waitUntil {
                agent.log().components(separatedBy: "events listening").count == 3 || !agent.isRunning
            }, "\(agent.log())")
        // The run ledger is a log: cut short, it is read up to the cut (what an append cut short by a crash leaves,
        // and what nothing acted on) and rewritten; overwritten, it is set aside like the others.
        let setAside = damage == .truncated ? ["slice.json", "events.db"] : ["slice.json", "runs.log", "events.db"]
        for name in setAside {
            #expect(
                !FaultEnvironment.files(in: state.path, startingWith: "\(name).corrupt-").isEmpty,
                "\(name) was not set aside\n\(agent.log())")
        }
        let log = agent.log()
        #expect(log.contains("cannot load the last good slice") && log.contains("slice.json.corrupt-"), "\(log)")
        #expect(
            log.contains(
                damage == .truncated
                    ? "the run ledger ended with a record cut short" : "the run ledger could not be read; it was set aside"),
            "\(log)")
        #expect(log.contains("the event store could not be read; it was set aside"), "\(log)")
        // The slice is rebuilt from the controller, the runner is in sync, and events flow again.
        #expect(await EventEndToEndTests.waitUntil { agent.sliceKeys() == keysBefore }, "\(agent.log())")
        #expect(
            await EventEndToEndTests.waitUntil {
                FaultEnvironment.runnerCondition(controller, "damaged-1", "Synced") == "True"
            },
            "\(agent.log())")
        let answer = try await EventEndToEndTests.post(#"{"n":100}"#, port: port)
        #expect(answer.status == 202, "\(answer.body)")
        #expect(await EventEndToEndTests.waitUntil { Self.deliveries(of: 100, in: sink) == 1 }, "\(agent.log())")
        // Never a crash loop, and the run acknowledged before the damage is not started again.
        #expect(agent.isRunning, "\(agent.log())")
        #expect(agent.log().components(separatedBy: "agent starting").count == 3, "\(agent.log())")
        #expect(FaultEnvironment.lines(of: starts).count == 1)
        #expect(result(status(controller, "done-before"), "damaged-1")?["phase"] == "Succeeded")
    }

    // MARK: A full disk

    /// An HTTP answer: its code (0 when the request failed or timed out) and body.
    struct Answer {
        var code: Int
        var body: String
    }

    /// Calls the controller's API with the admin token, with curl, bounded at 20 s.
    static func call(_ controller: ControllerProcess, _ method: String, _ path: String, body: String? = nil) throws
        -> Answer
    {
        let token = try String(contentsOf: controller.dataDirectory.file("admin.token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var arguments = [
            "-s", "--max-time", "20", "-w", "\n%{http_code}", "--cacert", controller.dataDirectory.file("ca.crt").path,
            "-X", method, "-H", "Authorization: Bearer \(token)", "\(controller.server)\(path)",
        ]
        if body != nil { arguments += ["-H", "Content-Type: application/json", "--data-binary", "@-"] }
        let result = try CommandResult.run(
            try #require(Binaries.onPath("curl")), arguments, input: body, timeout: .seconds(30))
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        return Answer(code: Int(lines.last ?? "") ?? 0, body: lines.dropLast().joined(separator: "\n"))
    }

    static let secrets = "/apis/steady.dev/v1/secrets"

    /// Creates a Secret named `name` holding `bytes` bytes of `marker`, with a POST.
    static func createSecret(_ controller: ControllerProcess, _ name: String, marker: Character, bytes: Int) throws
        -> Answer
    {
        let body =
            #"{"apiVersion":"steady.dev/v1","kind":"Secret","metadata":{"name":"\#(name)"},"#
            + #""stringData":{"k":"\#(String(repeating: marker, count: bytes))"}}"#
        return try call(controller, "POST", secrets, body: body)
    }

    @Test(
        .enabled(if: FaultEnvironment.canMountTmpfs, "skipped: needs root and a kernel that lets it mount a tmpfs"),
        .enabled(if: FaultEnvironment.hasCurl, "skipped: needs curl to read HTTP codes"))
    func aFullDiskFailsWritesWithAStatusKeepsReadsAndRecovers() throws {
        let controller = try ControllerProcess()
        let disk = try TmpfsMount(at: controller.dataDirectory.path, megabytes: 16)
        defer {
            controller.stop(signal: SIGKILL)
            disk.unmount()
            controller.remove()
        }
        try controller.start()
        let path = Self.secrets
        var acknowledged: [String] = []
        for n in 0..<5 {
            let answer = try Self.createSecret(controller, "kept-\(n)", marker: "k", bytes: 1000)
            #expect(answer.code == 201, "\(answer)")
            if answer.code == 201 { acknowledged.append("kept-\(n)") }
        }

        // Fill the disk, then write until the store finds no room (its WAL may hold a little first).
        #expect(disk.fill("filler") > 0)
        var failure: Answer?
        for n in 0..<200 {
            let answer = try Self.createSecret(controller, "full-\(n)", marker: "f", bytes: 64 << 10)
            guard answer.code == 201 else {
                failure = answer
                break
            }
            acknowledged.append("full-\(n)")
        }
        let refused = try #require(failure, "every write succeeded on a full disk")
        #expect((500..<600).contains(refused.code), "\(refused)")
        #expect(refused.body.contains(#""kind":"Status""#), "\(refused)")
        #expect(controller.isRunning)

        // Reads go on, and every acknowledged object is there.
        let listed = try Self.call(controller, "GET", path)
        #expect(listed.code == 200, "\(listed)")
        for name in acknowledged { #expect(listed.body.contains(#""name":"\#(name)""#), "\(name) is missing") }

        // Room again: writes resume by themselves.
        try FileManager.default.removeItem(atPath: disk.path + "/filler")
        #expect(
            try eventually(timeout: .seconds(30)) {
                try Self.createSecret(controller, "after-full", marker: "a", bytes: 1000).code == 201
            }, "writes did not resume once there was room\n\(controller.log())")
        acknowledged.append("after-full")

        // Nothing acknowledged was lost or damaged, across a restart too.
        try controller.restart()
        for name in acknowledged {
            let got = try Self.call(controller, "GET", "\(path)/\(name)")
            #expect(got.code == 200, "\(name): \(got)")
        }
        #expect(try Self.createSecret(controller, "after-restart", marker: "r", bytes: 1000).code == 201)
    }

    @Test(.enabled(if: FaultEnvironment.canMountTmpfs, "skipped: needs root and a kernel that lets it mount a tmpfs"))
    func aFullAgentDiskKeepsTheLastGoodSliceAndCatchesUpWhenSpaceReturns() throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let agent = try AgentProcess(name: "full-1")
        let disk = try TmpfsMount(at: agent.stateDirectory.path, megabytes: 1)
        defer {
            agent.stop(signal: SIGKILL)
            disk.unmount()
            agent.remove()
        }
        try agent.start(controller: controller, joinToken: try controller.joinToken())
        try controller.apply(Self.assignedRoute("saved", runners: ["full-1"]))
        #expect(eventually(timeout: .seconds(30)) { agent.sliceKeys().contains("Route/saved") }, "\(agent.log())")
        let saved = agent.sliceKeys()

        // No room for the next slice: the agent serves and keeps the last good one, and says why it is not in sync.
        #expect(disk.fill("filler") > 0)
        try controller.apply(Self.assignedRoute("unsaved", runners: ["full-1"]))
        #expect(
            eventually(timeout: .seconds(30)) {
                FaultEnvironment.runnerCondition(controller, "full-1", "Synced") == "False"
            },
            "\(agent.log())")
        #expect(agent.log().contains("cannot save the slice; serving the last good one"), "\(agent.log())")
        #expect(agent.sliceKeys() == saved, "the saved slice was lost or damaged on the full disk")
        #expect(agent.isRunning)

        // Room again: the agent saves it by itself, with no further change from the controller.
        try FileManager.default.removeItem(atPath: disk.path + "/filler")
        #expect(
            eventually(timeout: .seconds(30)) {
                agent.sliceKeys().contains("Route/unsaved")
                    && FaultEnvironment.runnerCondition(controller, "full-1", "Synced") == "True"
            }, "\(agent.log())")
        #expect(agent.log().components(separatedBy: "agent starting").count == 2, "the agent restarted")
    }

    // MARK: A credential revoked mid-stream

    @Test func aCredentialRevokedMidStreamClosesTheStreamWithAReasonOnBothSides() async throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        let agent = try AgentProcess(name: "revoked-1")
        defer { agent.remove() }
        try agent.start(controller: controller, joinToken: try controller.joinToken())
        #expect(
            await EventEndToEndTests.waitUntil {
                FaultEnvironment.runnerCondition(controller, "revoked-1", "Connected") == "True"
            },
            "\(agent.log())")

        // Deleting the Runner revokes its agent's credential.
        let deleted = try controller.run("steady", ["delete", "runner", "revoked-1"])
        #expect(deleted.status == 0, "\(deleted)")
        #expect(
            await EventEndToEndTests.waitUntil { !agent.isRunning },
            "the agent kept running with a revoked credential\n\(agent.log())")
        #expect(agent.exitStatus != 0)
        // The agent's log says why it stopped; the controller's says why it closed the stream and refuses it now.
        #expect(
            agent.log().contains("no longer accepts this agent's credential for runner revoked-1"), "\(agent.log())")
        let reasons = controller.log().split(separator: "\n").filter { $0.contains("steady.runner=revoked-1") }
        #expect(reasons.contains { $0.contains("credential is revoked and its stream closed") }, "\(controller.log())")
        #expect(reasons.contains { $0.contains("unknown or revoked credential") }, "\(controller.log())")
        // The credential stays refused: a restart of the agent does not get the stream back.
        try agent.start(controller: controller, joinToken: nil)
        #expect(await EventEndToEndTests.waitUntil { !agent.isRunning }, "\(agent.log())")
        #expect(FaultEnvironment.runnerCondition(controller, "revoked-1", "Connected") == nil)
    }

    // MARK: Credential expiry and rotation

    /// How many times the agent's log says it rotated its credential.
    static func rotations(_ agent: AgentProcess) -> Int {
        agent.log().components(separatedBy: "credential rotated; reconnecting with the new one").count - 1
    }

    @Test func rotationKeepsAHealthyAgentConnectedAcrossSeveralCredentialLifetimes() async throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        // Credentials last 6 s: the agent rotates each after 4 s.
        try controller.start(extraArguments: ["--agent-credential-ttl", "6s"])
        let agent = try AgentProcess(name: "rotating-1")
        defer { agent.remove() }
        try agent.start(controller: controller, joinToken: try controller.joinToken())
        #expect(
            await EventEndToEndTests.waitUntil {
                FaultEnvironment.runnerCondition(controller, "rotating-1", "Connected") == "True"
            },
            "\(agent.log())")
        let first = try String(contentsOf: agent.stateDirectory.file("credential"), encoding: .utf8)
        let connected = ContinuousClock.now

        // Four rotations take the agent past three lifetimes of 6 s; it stays in all along.
        var disconnectedSeen = false
        let rotated = await EventEndToEndTests.waitUntil(timeout: .seconds(60)) {
            if FaultEnvironment.runnerCondition(controller, "rotating-1", "Connected") != "True" {
                disconnectedSeen = true
            }
            return Self.rotations(agent) >= 4 && ContinuousClock.now - connected > .seconds(18)
        }
        #expect(rotated, "\(agent.log())")
        #expect(!disconnectedSeen, "the runner was Connected=False during rotation\n\(agent.log())")
        #expect(agent.isRunning, "\(agent.log())")
        #expect(!agent.log().contains("expired"), "\(agent.log())")
        #expect(!controller.log().contains("credential expired"), "\(controller.log())")
        #expect(FaultEnvironment.runnerCondition(controller, "rotating-1", "Synced") == "True")
        // The credential on disk is the new one, private, and the lifetime beside it says when it expires.
        let current = try String(contentsOf: agent.stateDirectory.file("credential"), encoding: .utf8)
        #expect(current != first)
        let attributes = try FileManager.default.attributesOfItem(atPath: agent.stateDirectory.file("credential").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(FileManager.default.fileExists(atPath: agent.stateDirectory.file("credential-lifetime").path))
    }

    @Test func aCredentialThatCannotRotateClosesItsStreamAtExpiryWithAReasonOnBothSides() async throws {
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start(extraArguments: ["--agent-credential-ttl", "8s"])
        let original = try AgentProcess(name: "copied-1")
        defer { original.remove() }
        try original.start(controller: controller, joinToken: try controller.joinToken())
        #expect(
            await EventEndToEndTests.waitUntil {
                FaultEnvironment.runnerCondition(controller, "copied-1", "Connected") == "True"
            },
            "\(original.log())")

        // A copy of the agent's state directory, run beside it: both hold the same credential, and only one of them
        // can rotate it (a rotated credential does not rotate again). The other keeps its stream until the
        // credential expires, and is then cut off at once.
        let copy = try AgentProcess(name: "copied-1")
        defer { copy.remove() }
        for file in ["credential", "credential-lifetime", "runner", "ca.crt"] {
            try FileManager.default.copyItem(
                at: original.stateDirectory.file(file), to: copy.stateDirectory.file(file))
        }
        try copy.start(controller: controller, joinToken: nil)
        let oneStopped = await EventEndToEndTests.waitUntil(timeout: .seconds(40)) {
            !original.isRunning || !copy.isRunning
        }
        #expect(oneStopped, "neither agent was cut off\n\(original.log())\n\(copy.log())")
        let (cutOff, kept) = copy.isRunning ? (original, copy) : (copy, original)
        #expect(cutOff.exitStatus != 0)
        // The agent says why, and what to do; it had tried to rotate and been refused.
        let log = cutOff.log()
        #expect(log.contains("cannot rotate the credential"), "\(log)")
        #expect(log.contains("the credential of runner copied-1 expired at"), "\(log)")
        #expect(log.contains("enrol again with a new join token"), "\(log)")
        // The controller says which runner and when, from the timer at the expiry (not at a later reconnect).
        let reasons = controller.log().split(separator: "\n").filter { $0.contains("steady.runner=copied-1") }
        #expect(
            reasons.contains { $0.contains("agent stream closed: its credential expired at") }, "\(controller.log())")
        // The other agent rotated and stays in.
        #expect(Self.rotations(kept) >= 1, "\(kept.log())")
        try await Task.sleep(for: .seconds(3))
        #expect(kept.isRunning, "\(kept.log())")
        #expect(FaultEnvironment.runnerCondition(controller, "copied-1", "Connected") == "True")

        // Stopped past its credential's expiry, an agent is refused at connect, with the reason.
        kept.stop()
        #expect(await EventEndToEndTests.waitUntil { !kept.isRunning })
        try await Task.sleep(for: .seconds(9))
        try kept.start(controller: controller, joinToken: nil)
        #expect(await EventEndToEndTests.waitUntil { !kept.isRunning }, "\(kept.log())")
        #expect(kept.exitStatus != 0)
        let refusals = controller.log().split(separator: "\n").filter {
            $0.contains("steady.runner=copied-1") && $0.contains("agent stream refused")
        }
        #expect(refusals.contains { $0.contains("expired at") }, "\(controller.log())")
    }
}
