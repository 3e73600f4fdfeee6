import Foundation
import Resources
import Testing

@testable import Reconciler

/// A RemoteRun with several controller replicas, each following it but only one hearing from each runner's agent:
/// what a replica takes from the others' recorded results, and how its status writes keep them.
@Suite struct ReplicaRunDispatchTests {
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
