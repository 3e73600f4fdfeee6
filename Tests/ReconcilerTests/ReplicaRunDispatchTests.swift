import Foundation
import Resources
import Testing

@testable import Reconciler

/// A RemoteRun with several controller replicas, each following it but only one hearing from each runner's agent:
/// what a replica takes from the others' recorded results, how its status writes keep them, and when it gives up a
/// runner whose replica and agent both went silent.
@Suite(.timeLimit(.minutes(1))) struct ReplicaRunDispatchTests {
    static let a = "https://10.0.0.5:7443"
    static let b = "https://10.0.0.6:7443"

    static func result(_ runner: String, _ phase: String, replica: String? = nil) -> JSONValue {
        var value: JSONValue = ["runner": .string(runner), "phase": .string(phase)]
        if let replica { value["outputReplica"] = .string(replica) }
        return value
    }

    static func summary(_ dispatch: RunDispatch) throws -> RunDispatcher.StatusSummary {
        let spec: JSONValue = ["target": ["runners": ["web-1", "web-2"]]]
        return RunDispatcher.StatusSummary(
            RunDispatcher.ActiveRun(
                name: "nightly", uid: "u1", spec: try spec.decode(as: RemoteRunSpec.self), dispatch: dispatch))
    }

    @Test func aReplicasStatusWriteKeepsResultsAnotherReplicaRecordedFurtherAlong() throws {
        // This replica dispatched both runners; neither agent is connected to it, so both are pending here.
        var dispatch = RunDispatch(runners: ["web-1", "web-2"], policy: .init())
        _ = dispatch.start(now: Date())
        let ours = [Self.result("web-1", "Pending"), Self.result("web-2", "Pending")]
        let stored: JSONValue = [
            "metadata": ["generation": 1],
            "status": [
                "phase": "Running",
                "results": [
                    Self.result("web-1", "Succeeded", replica: Self.a),
                    Self.result("web-2", "Running", replica: Self.a),
                ],
            ],
        ]
        let status = try RunDispatcher.status(of: try Self.summary(dispatch), results: ours, over: stored)
        #expect(status["results"] == stored["status"]?["results"])
        #expect(status["counts"]?["succeeded"] == 1)
        #expect(status["counts"]?["running"] == 1)
        #expect(status["counts"]?["pending"] == 0)

        // A final phase stays whatever this replica thinks (it timed the runner out, not having its agent).
        let late = [Self.result("web-1", "Unreachable"), Self.result("web-2", "Succeeded", replica: Self.b)]
        let merged = try RunDispatcher.status(of: try Self.summary(dispatch), results: late, over: stored)
        #expect(
            merged["results"] == [
                Self.result("web-1", "Succeeded", replica: Self.a), Self.result("web-2", "Succeeded", replica: Self.b),
            ])

        // A run the store shows finished is left as it is.
        var finished = stored
        finished["status"]?["phase"] = "Succeeded"
        let kept = try RunDispatcher.status(of: try Self.summary(dispatch), results: late, over: finished)
        #expect(kept == finished["status"])
    }

    @Test func aFinalPhaseAnotherReplicaRecordedIsTakenWhateverThisReplicaThought() {
        var dispatch = RunDispatch(runners: ["web-1", "web-2"], policy: .init(batchSize: .count(1)))
        #expect(RunDispatchTests.dispatched(dispatch.start(now: Date())) == ["web-1"])
        // web-1 dispatched here (in flight), web-2 still waiting for a slot: both are taken as recorded.
        let next = dispatch.handle(.recorded("web-1", .succeeded), now: Date())
        #expect(RunDispatchTests.dispatched(next) == ["web-2"])
        let done = dispatch.handle(.recorded("web-2", .failed), now: Date())
        #expect(done.contains(.complete(.failed, reason: "RunnersFailed")))
        #expect(dispatch.phase(of: "web-1") == .succeeded)
        // Not a final phase: nothing to take.
        var other = RunDispatch(runners: ["web-1"], policy: .init())
        _ = other.start(now: Date())
        #expect(other.handle(.recorded("web-1", .running), now: Date()).isEmpty)
        #expect(other.phase(of: "web-1") == .pending)
    }

    @Test func aRunnerRunningOnAnotherReplicaIsNotTimedOutWhileItsAgentIsSeen() {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var dispatch = RunDispatch(
            runners: ["web-1", "web-2"], policy: .init(batchSize: .count(1), deliveryTimeout: 5, silenceTimeout: 20))
        // Neither agent is connected here: web-1 is dispatched (in vain), web-2 waits for the slot.
        #expect(RunDispatchTests.dispatched(dispatch.start(now: t0)) == ["web-1"])
        #expect(dispatch.handle(.runningElsewhere("web-1"), now: t0.addingTimeInterval(1)).isEmpty)
        #expect(dispatch.phase(of: "web-1") == .running)
        // Not the delivery timeout: the silence timeout, from the last sign of its agent.
        #expect(dispatch.nextDeadline == t0.addingTimeInterval(21))
        // A long run, its agent's heartbeat seen in the store every 15 s: never given up here.
        for second in stride(from: 15.0, through: 600, by: 15) {
            #expect(dispatch.handle(.agentSeen("web-1"), now: t0.addingTimeInterval(second)).isEmpty)
            #expect(dispatch.handle(.timePassed, now: t0.addingTimeInterval(second + 14)).isEmpty)
        }
        #expect(dispatch.phase(of: "web-1") == .running)
        // Its result, recorded there, frees the slot.
        let next = dispatch.handle(.recorded("web-1", .succeeded), now: t0.addingTimeInterval(615))
        #expect(RunDispatchTests.dispatched(next) == ["web-2"])
        // A waiting runner found running elsewhere takes a slot there too, and a final phase is never undone.
        var other = RunDispatch(runners: ["web-1", "web-2"], policy: .init(batchSize: .count(1)))
        _ = other.start(now: t0)
        #expect(other.handle(.runningElsewhere("web-2"), now: t0).isEmpty)
        #expect(other.phase(of: "web-2") == .running)
        _ = other.handle(.recorded("web-1", .failed), now: t0)
        _ = other.handle(.runningElsewhere("web-1"), now: t0)
        #expect(other.phase(of: "web-1") == .failed)
    }

    @Test func aRunnerWhoseReplicaAndAgentWentSilentIsUnreachableForReplicaLost() {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var dispatch = RunDispatch(runners: ["web-1"], policy: .init(deliveryTimeout: 5, silenceTimeout: 20))
        _ = dispatch.start(now: t0)
        _ = dispatch.handle(.runningElsewhere("web-1"), now: t0.addingTimeInterval(1))
        // The last heartbeat written by the replica holding its agent; then that replica and the agent die.
        _ = dispatch.handle(.agentSeen("web-1"), now: t0.addingTimeInterval(10))
        #expect(dispatch.nextDeadline == t0.addingTimeInterval(30))
        #expect(dispatch.handle(.timePassed, now: t0.addingTimeInterval(29.9)).isEmpty)
        #expect(
            dispatch.handle(.timePassed, now: t0.addingTimeInterval(30)) == [
                .markUnreachable("web-1", reason: "ReplicaLost"), .complete(.failed, reason: "RunnersFailed"),
            ])
        #expect(dispatch.phase(of: "web-1") == .unreachable)
        #expect(dispatch.nextDeadline == nil)
        // Never less than the delivery timeout, whatever the heartbeats allow.
        #expect(RunDispatch.Policy(deliveryTimeout: 90, silenceTimeout: 20).silenceTimeout == 90)
    }

    @Test func anAgentConnectedHereIsLostHereNotWatchedForSilence() {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var dispatch = RunDispatch(
            runners: ["web-1"], policy: .init(deliveryTimeout: 5, silenceTimeout: 20), connected: ["web-1"])
        _ = dispatch.start(now: t0)
        // Another replica recorded it running before its agent moved here: it reports here now.
        _ = dispatch.handle(.runningElsewhere("web-1"), now: t0.addingTimeInterval(1))
        #expect(dispatch.nextDeadline == nil)
        // Its agent leaves: lost here, after the delivery timeout.
        _ = dispatch.handle(.disconnected("web-1"), now: t0.addingTimeInterval(2))
        #expect(
            dispatch.handle(.timePassed, now: t0.addingTimeInterval(7)).first
                == .markUnreachable("web-1", reason: "AgentLost"))
        // Seen elsewhere then connected here: the silence deadline is dropped.
        var moved = RunDispatch(runners: ["web-1"], policy: .init(deliveryTimeout: 5, silenceTimeout: 20))
        _ = moved.start(now: t0)
        _ = moved.handle(.runningElsewhere("web-1"), now: t0)
        _ = moved.handle(.connected("web-1"), now: t0.addingTimeInterval(3))
        #expect(moved.nextDeadline == nil)
        #expect(moved.handle(.timePassed, now: t0.addingTimeInterval(600)).isEmpty)
    }

    @Test func aResultItsAgentReportsLaterReplacesReplicaLostWhileTheRunIsUnderWay() {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var dispatch = RunDispatch(
            runners: ["web-1", "web-2"], policy: .init(deliveryTimeout: 5, silenceTimeout: 20), connected: ["web-2"])
        _ = dispatch.start(now: t0)
        _ = dispatch.handle(.runningElsewhere("web-1"), now: t0)
        _ = dispatch.handle(.accepted("web-2"), now: t0)
        _ = dispatch.handle(.started("web-2"), now: t0)
        #expect(dispatch.handle(.timePassed, now: t0.addingTimeInterval(20)) == [.markUnreachable("web-1", reason: "ReplicaLost")])
        #expect(dispatch.errorCount == 1)
        // Another replica's guess is not news; the agent's ledger result, reported here, is.
        #expect(dispatch.handle(.recorded("web-1", .unreachable), now: t0.addingTimeInterval(21)).isEmpty)
        #expect(dispatch.handle(.finished("web-1", .succeeded), now: t0.addingTimeInterval(22)).isEmpty)
        #expect(dispatch.phase(of: "web-1") == .succeeded)
        #expect(dispatch.errorCount == 0)
        #expect(
            dispatch.handle(.finished("web-2", .succeeded), now: t0.addingTimeInterval(23)) == [
                .complete(.succeeded, reason: nil)
            ])
        // Another replica gave it up first: taken so here, and the agent's result, reported here, still wins.
        var adopted = RunDispatch(runners: ["web-1", "web-2"], policy: .init(), connected: ["web-2"])
        _ = adopted.start(now: t0)
        _ = adopted.handle(.runningElsewhere("web-1"), now: t0)
        #expect(adopted.handle(.recordedReplicaLost("web-1"), now: t0).isEmpty)
        #expect(adopted.phase(of: "web-1") == .unreachable)
        _ = adopted.handle(.finished("web-1", .failed), now: t0)
        #expect(adopted.phase(of: "web-1") == .failed)
        // Once the run is complete, it stays as it ended.
        var ended = RunDispatch(runners: ["web-1"], policy: .init(deliveryTimeout: 5, silenceTimeout: 20))
        _ = ended.start(now: t0)
        _ = ended.handle(.runningElsewhere("web-1"), now: t0)
        _ = ended.handle(.timePassed, now: t0.addingTimeInterval(20))
        #expect(ended.handle(.recorded("web-1", .succeeded), now: t0.addingTimeInterval(21)).isEmpty)
        #expect(ended.phase(of: "web-1") == .unreachable)
    }

    @Test func anAgentsReportedResultReplacesAStoredReplicaLostAndNothingElse() {
        var lost = Self.result("web-1", "Unreachable")
        lost["reason"] = "ReplicaLost"
        var reported = Self.result("web-1", "Succeeded", replica: Self.b)
        reported["exitCode"] = 0
        #expect(RunDispatcher.mergedResults([reported], over: [lost]).results == [reported])
        // This replica's own guess never replaces what an agent reported, nor another guess.
        #expect(RunDispatcher.mergedResults([lost], over: [reported]).results == [reported])
        var timedOut = Self.result("web-1", "Unreachable")
        timedOut["reason"] = "AgentLost"
        #expect(RunDispatcher.mergedResults([timedOut], over: [lost]).results == [lost])
    }

    @Test func onlyAConnectedRunnersNewHeartbeatIsASignOfLife() {
        func runner(heartbeat: String, connected: String) -> JSONValue {
            [
                "metadata": ["name": "web-1"],
                "status": [
                    "lastHeartbeatTime": .string(heartbeat),
                    "conditions": [["type": "Connected", "status": .string(connected)]],
                ],
            ]
        }
        let key = ObjectKey(kind: "Runner", name: "web-1")
        let earlier = runner(heartbeat: "2027-01-15T10:00:00Z", connected: "True")
        let later = runner(heartbeat: "2027-01-15T10:01:00Z", connected: "True")
        #expect(RunDispatcher.isFreshHeartbeat(ObjectChange(key: key, old: earlier, new: later)))
        #expect(RunDispatcher.isFreshHeartbeat(ObjectChange(key: key, old: nil, new: later)))
        // The same heartbeat (another field changed), or a runner written disconnected: no sign of life.
        #expect(!RunDispatcher.isFreshHeartbeat(ObjectChange(key: key, old: later, new: later)))
        let silent = runner(heartbeat: "2027-01-15T10:02:00Z", connected: "False")
        #expect(!RunDispatcher.isFreshHeartbeat(ObjectChange(key: key, old: later, new: silent)))
        #expect(!RunDispatcher.isFreshHeartbeat(ObjectChange(key: key, old: later, new: nil)))
    }

    /// Two replicas following one run with `batchSize: 2`, each holding every other runner's agent, each learning
    /// of the other's results one step late: the runners really running (dispatched by their holder) never exceed
    /// the batch. Returns the most at once.
    static func mostRunningAcrossTwoReplicas(sharesWindow: Bool) -> Int {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let runners = RunDispatchTests.runners(8)
        let held = [0, 1].map { parity in Set(runners.indices.filter { $0 % 2 == parity }.map { runners[$0] }) }
        var replicas = held.map {
            RunDispatch(runners: runners, policy: .init(batchSize: .count(2), sharesWindow: sharesWindow), connected: $0)
        }
        var running: [String] = []
        var most = 0
        // What each replica has yet to learn from the other: the runners that finished there.
        var unheard: [[String]] = [[], []]
        func take(_ directives: [RunDispatch.Directive], on replica: Int) {
            for runner in RunDispatchTests.dispatched(directives) where held[replica].contains(runner) {
                _ = replicas[replica].handle(.accepted(runner), now: t0)
                _ = replicas[replica].handle(.started(runner), now: t0)
                running.append(runner)
                most = max(most, running.count)
                take(replicas[1 - replica].handle(.runningElsewhere(runner), now: t0), on: 1 - replica)
            }
        }
        func hear(on replica: Int) {
            for runner in unheard[replica] {
                take(replicas[replica].handle(.recorded(runner, .succeeded), now: t0), on: replica)
            }
            unheard[replica] = []
        }
        // Both start before hearing from the other.
        let starts = [0, 1].map { replicas[$0].start(now: t0) }
        for replica in 0..<2 { take(starts[replica], on: replica) }
        while !running.isEmpty {
            let runner = running.removeFirst()
            let (holder, other) = held[0].contains(runner) ? (0, 1) : (1, 0)
            hear(on: other)
            unheard[other] = [runner]
            take(replicas[holder].handle(.finished(runner, .succeeded), now: t0), on: holder)
            if running.isEmpty { for replica in 0..<2 { hear(on: replica) } }
        }
        #expect(replicas.allSatisfy { $0.completion?.phase == .succeeded })
        return most
    }

    @Test func replicasShareOneBatchWindowByDispatchingInTargetOrder() {
        #expect(Self.mostRunningAcrossTwoReplicas(sharesWindow: true) == 2)
        // Each replica's connected agents first: each fills its own window, twice the batch.
        #expect(Self.mostRunningAcrossTwoReplicas(sharesWindow: false) == 4)
    }
}
