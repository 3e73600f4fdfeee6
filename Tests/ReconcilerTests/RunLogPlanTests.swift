import Foundation
import Resources
import Testing

@testable import Reconciler

/// Where a RemoteRun's `log` is answered from with several controller replicas, and how a replica's status write
/// keeps what another replica recorded.
@Suite struct RunLogPlanTests {
    static let a = "https://10.0.0.5:7443"
    static let b = "https://10.0.0.6:7443"
    static let c = "https://10.0.0.7:7443"

    @Test func aRunnerHeldElsewhereIsPassedToItsHolderAndOneHeldHereIsServedHere() {
        let plan = RunLogPlan(ownURL: Self.b, isProxied: false, holders: ["web-1": Self.a, "web-2": Self.b])
        #expect(plan.source(runner: "web-1") == .proxy(replica: Self.a))
        #expect(plan.source(runner: "web-2") == .local)
        // Nobody named yet (the run has not started there): this replica answers with what it has.
        #expect(plan.source(runner: "web-3") == .local)
        #expect(plan.awaitsHolder(of: "web-3"))
        #expect(!plan.awaitsHolder(of: "web-1"))
    }

    @Test func everyRunnerMergesThisReplicasRunnersWithEachOtherHolderOnce() {
        let plan = RunLogPlan(
            ownURL: Self.b, isProxied: false,
            holders: ["web-1": Self.c, "web-2": Self.b, "web-3": Self.a, "web-4": Self.c])
        #expect(plan.source(runner: nil) == .merge(replicas: [Self.a, Self.c]))
        #expect(plan.servesHere("web-2"))
        #expect(plan.servesHere("web-9"))
        #expect(!plan.servesHere("web-1"))
        let allHere = RunLogPlan(ownURL: Self.b, isProxied: false, holders: ["web-2": Self.b])
        #expect(allHere.source(runner: nil) == .local)
    }

    @Test func aRequestAnotherReplicaPassedOnIsNeverPassedOnAgain() {
        // The replicas disagree (the status moved meanwhile): answered here all the same, so it cannot loop.
        let plan = RunLogPlan(ownURL: Self.b, isProxied: true, holders: ["web-1": Self.a, "web-2": Self.b])
        #expect(plan.source(runner: "web-1") == .local)
        #expect(plan.source(runner: nil) == .local)
        #expect(!plan.awaitsHolder(of: "web-3"))
        // Asked for every runner, it answers only for the runners it holds, which the asking replica lacks.
        #expect(plan.servesHere("web-2"))
        #expect(!plan.servesHere("web-1"))
    }

    @Test func aLoneControllerAnswersEverythingItself() {
        let plan = RunLogPlan(ownURL: nil, isProxied: false, holders: ["web-1": Self.a])
        #expect(plan.source(runner: "web-1") == .local)
        #expect(plan.source(runner: nil) == .local)
        #expect(!plan.awaitsHolder(of: "web-2"))
    }

    @Test func holdersAreReadFromStatusResults() {
        let run: JSONValue = [
            "status": [
                "results": [
                    ["runner": "web-1", "phase": "Succeeded", "outputReplica": .string(Self.a)],
                    ["runner": "web-2", "phase": "Pending"],
                ]
            ]
        ]
        #expect(RunLogPlan.holders(of: run) == ["web-1": Self.a])
    }

    @Test func theDefaultAdvertisedURLIsAServerNameTheListenAddressOrTheHostName() {
        #expect(
            ReplicaPeers.defaultURL(serverNames: ["ctl-a.example"], listenHost: "0.0.0.0", port: 7443, hostName: "h")
                == "https://ctl-a.example:7443")
        #expect(
            ReplicaPeers.defaultURL(serverNames: [], listenHost: "10.0.0.5", port: 7443, hostName: "h")
                == "https://10.0.0.5:7443")
        #expect(ReplicaPeers.defaultURL(serverNames: [], listenHost: "::", port: 1, hostName: "h") == "https://h:1")
        let bracketed = ReplicaPeers.defaultURL(serverNames: ["::1"], listenHost: "::", port: 1, hostName: "h")
        #expect(bracketed == "https://[::1]:1")
        #expect(ReplicaPeers.urlProblem("https://ctl-a.example:7443") == nil)
        #expect(ReplicaPeers.urlProblem("http://ctl-a.example:7443") != nil)
        #expect(ReplicaPeers.urlProblem("https://ctl-a.example:7443/api") != nil)
    }

    // MARK: Status writes with several replicas

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

    @Test func aRunnerRunningOnAnotherReplicaIsNeverTimedOutHere() {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var dispatch = RunDispatch(runners: ["web-1", "web-2"], policy: .init(batchSize: .count(1), deliveryTimeout: 5))
        // Neither agent is connected here: web-1 is dispatched (in vain), web-2 waits for the slot.
        #expect(RunDispatchTests.dispatched(dispatch.start(now: t0)) == ["web-1"])
        #expect(dispatch.handle(.runningElsewhere("web-1"), now: t0.addingTimeInterval(1)).isEmpty)
        #expect(dispatch.phase(of: "web-1") == .running)
        // Long past the delivery timeout: still running, and no deadline is kept for it.
        #expect(dispatch.nextDeadline == nil)
        #expect(dispatch.handle(.timePassed, now: t0.addingTimeInterval(600)).isEmpty)
        #expect(dispatch.phase(of: "web-1") == .running)
        // Its result, recorded there, frees the slot.
        let next = dispatch.handle(.recorded("web-1", .succeeded), now: t0.addingTimeInterval(601))
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
}
