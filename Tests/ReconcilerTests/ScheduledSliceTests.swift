import Foundation
import Resources
import Testing

@testable import Reconciler

/// A Runner with `spec.schedule` gets its own Runner in its slice (so its agent runs on schedule while the
/// controller is away); runners without one keep sharing slices; the agent's last scheduled run becomes
/// `status.lastRun`.
@Suite(.timeLimit(.minutes(1))) struct ScheduledSliceTests {
    typealias F = ControllerFixtures
    let start = ContinuousClock.now

    static func change(_ object: JSONValue) -> ObjectChange {
        let key = ObjectKey(
            kind: object["kind"]?.stringValue ?? "", name: object["metadata"]?["name"]?.stringValue ?? "")
        return ObjectChange(key: key, old: nil, new: object)
    }

    static func scheduled(_ name: String, interval: String, generation: Int64 = 1) -> JSONValue {
        var runner = F.object(
            "Runner", name, spec: ["schedule": ["interval": .string(interval), "splay": "1s"]], labels: ["role": "web"],
            generation: generation)
        runner["status"] = ["hostname": "web-host"]
        return runner
    }

    static let runnerKey = SliceKey(kind: RunnerSpec.kind, name: "web-1")

    /// web-1 has a schedule; web-2 and web-3 do not; all three are placed by the same Assignment.
    func planned() -> GatewayState {
        var state = GatewayState(configuration: .init(heartbeatTimeout: .seconds(15)))
        let objects = [
            Self.scheduled("web-1", interval: "5m"), F.runner("web-2", labels: ["role": "web"]),
            F.runner("web-3", labels: ["role": "web"]), F.action("notify"), F.route("alerts", actions: ["notify"]),
            F.assignment("web", selector: ["role": "web"], routes: ["alerts"], actions: ["notify"]),
        ]
        _ = state.apply(InformerUpdate(changes: objects.map(Self.change), revision: 4), now: .now)
        _ = state.recompute(now: start)
        return state
    }

    static func messages(_ directives: [GatewayState.Directive]) -> [String: SliceMessage] {
        var sent: [String: SliceMessage] = [:]
        for directive in directives {
            if case .send(let message, let runner, _) = directive { sent[runner] = message }
        }
        return sent
    }

    @Test func aScheduledRunnerHoldsItsOwnRunnerAndTheOthersStillShare() throws {
        let state = planned()
        let own = try #require(state.runners["web-1"]?.slice)
        let shared = try #require(state.runners["web-2"]?.slice)
        #expect(state.runners["web-3"]?.slice.digest == shared.digest)
        #expect(own.digest != shared.digest)
        #expect(Set(own.objects.keys) == Set(shared.objects.keys).union([Self.runnerKey]))
        #expect(shared.objects[SliceKey(kind: RunnerSpec.kind, name: "web-2")] == nil)
        // Name, generation and schedule only: no labels, no status.
        let runner = try #require(own.objects[Self.runnerKey])
        #expect(runner["metadata"] == ["name": "web-1", "generation": 1])
        #expect(runner["spec"] == ["schedule": ["interval": "5m", "splay": "1s"]])
        #expect(runner["status"] == nil)
        // A first attach plans the same slice as the recompute did.
        let attached = SlicePlanner().slice(runner: "web-1", labels: ["role": "web"], inputs: state.inputs)
        #expect(attached.digest == own.digest)
    }

    @Test func aScheduleChangeReplansThatRunnerAndAStatusWriteNothing() throws {
        var state = planned()
        let connections = ["web-1", "web-2"].map { runner in (runner, UUID()) }
        for (runner, connection) in connections {
            _ = state.attach(runner: runner, revision: 0, digest: nil, connection: connection)
        }
        let shared = try #require(state.runners["web-2"]?.slice.digest)

        // Status (the gateway's own writes) does not re-plan.
        var reported = Self.scheduled("web-1", interval: "5m")
        reported["status"] = ["lastRun": ["phase": "Succeeded", "trigger": "schedule"]]
        _ = state.apply(InformerUpdate(changes: [Self.change(reported)], revision: 5), now: .now)
        #expect(!state.isDirty)

        // A new interval reaches web-1 alone, as a diff of its Runner.
        let faster = Self.scheduled("web-1", interval: "2s", generation: 2)
        _ = state.apply(InformerUpdate(changes: [Self.change(faster)], revision: 6), now: .now)
        let diff = Self.messages(state.recompute(now: start))
        #expect(Array(diff.keys) == ["web-1"])
        #expect(diff["web-1"]?.type == .diff)
        #expect(diff["web-1"]?.objects?.map(\.key) == [Self.runnerKey])
        #expect(diff["web-1"]?.objects?.first?.object["spec"]?["schedule"]?["interval"] == "2s")

        // Without a schedule web-1 shares the others' slice again, and its Runner is removed from it.
        _ = state.apply(InformerUpdate(changes: [Self.change(F.runner("web-1", labels: ["role": "web"]))], revision: 7), now: .now)
        let removed = Self.messages(state.recompute(now: start))
        #expect(removed["web-1"]?.removed == [Self.runnerKey])
        #expect(state.runners["web-1"]?.slice.digest == shared)
    }

    @Test func theReportedScheduledRunBecomesLastRunAndStaysWhenAReportHasNone() throws {
        var state = planned()
        let digest = state.runners["web-1"]?.slice.digest
        let summary = RunnerSpec.RunSummary(
            phase: .succeeded, exitCode: 0, startTime: "2026-12-01T10:00:00Z", completionTime: "2026-12-01T10:00:01Z",
            outputBytes: 12, trigger: RunnerSpec.RunSummary.scheduleTrigger)
        let report = AgentReport(observedSliceRevision: 4, sliceDigest: digest, synced: true, lastRun: summary)
        let written = state.record(runner: "web-1", report, now: start).compactMap { directive -> RunnerStatus? in
            if case .writeStatus(_, let status) = directive { return status }
            return nil
        }
        let status = try #require(written.first)
        let merged = try status.merged(into: Self.scheduled("web-1", interval: "5m"), heartbeatTime: nil)
        #expect(try merged["lastRun"]?.decode(as: RunnerSpec.RunSummary.self) == summary)

        // An agent that restarted reports no run yet: the stored one stays.
        var restarted = report
        restarted.lastRun = nil
        var stored = Self.scheduled("web-1", interval: "5m")
        stored["status"] = merged
        let again = RunnerStatus(
            runner: "web-1", report: restarted, isConnected: true, slice: .empty, desiredRevision: 4,
            heartbeatTimeout: .seconds(15))
        #expect(try again.merged(into: stored, heartbeatTime: nil)["lastRun"] == merged["lastRun"])
    }
}
