import Foundation
import Resources
import Testing

@testable import Reconciler

/// The agent gateway's decisions, with time as a parameter: no sockets, no store, no sleeping.
@Suite(.timeLimit(.minutes(1))) struct GatewayStateTests {
    typealias F = ControllerFixtures
    let start = ContinuousClock.now
    static let timeout = Duration.seconds(15)

    func change(_ object: JSONValue) -> ObjectChange {
        let key = ObjectKey(kind: object["kind"]?.stringValue ?? "", name: object["metadata"]?["name"]?.stringValue ?? "")
        return ObjectChange(key: key, old: nil, new: object)
    }

    /// A gateway that knows runner web-1 (placed with one route and its action) and has planned its slice.
    func planned() -> GatewayState {
        var state = GatewayState(configuration: .init(heartbeatTimeout: Self.timeout))
        let objects = [
            F.runner("web-1", labels: ["role": "web"]), F.action("notify"), F.route("alerts", actions: ["notify"]),
            F.assignment("web", selector: ["role": "web"], routes: ["alerts"], actions: ["notify"]),
        ]
        _ = state.apply(InformerUpdate(changes: objects.map(change), revision: 4), now: .now)
        _ = state.recompute(now: start)
        return state
    }

    static func statuses(_ directives: [GatewayState.Directive]) -> [RunnerStatus] {
        directives.compactMap { directive in
            if case .writeStatus(_, let status) = directive { return status }
            return nil
        }
    }

    static func condition(_ status: RunnerStatus?, _ type: String) -> Condition? {
        status?.conditions[type: type]
    }

    /// Runner web-1 as the store shows it after another controller wrote its agent connected, at `heartbeat`.
    func storedConnected(heartbeat: String) -> ObjectChange {
        var runner = F.runner("web-1", labels: ["role": "web"])
        runner["status"] = [
            "conditions": [["type": "Connected", "status": "True", "reason": "Heartbeat"]],
            "lastHeartbeatTime": .string(heartbeat),
        ]
        return change(runner)
    }

    static func unheard(_ directives: [GatewayState.Directive]) -> [String] {
        directives.compactMap { directive in
            if case .writeUnheard(let runner, _) = directive { return runner }
            return nil
        }
    }

    @Test func aRunnerStoredConnectedWhoseHeartbeatStandsStillIsMarkedDisconnected() throws {
        var state = planned()
        let silence = state.configuration.heartbeatSilence
        _ = state.apply(InformerUpdate(changes: [storedConnected(heartbeat: "t1")], revision: 5), now: start)
        #expect(state.nextSilenceDeadline() == start + silence)
        // The controller holding its agent writes a new heartbeat: the wait starts again.
        _ = state.apply(
            InformerUpdate(changes: [storedConnected(heartbeat: "t2")], revision: 6), now: start + .seconds(60))
        #expect(Self.unheard(state.expireSilentRunners(now: start + silence)).isEmpty)
        #expect(state.nextSilenceDeadline() == start + .seconds(60) + silence)
        let marked = state.expireSilentRunners(now: start + .seconds(60) + silence)
        #expect(Self.unheard(marked) == ["web-1"])
        // Marked once; only Connected and Ready are written, over what the last controller wrote.
        #expect(Self.unheard(state.expireSilentRunners(now: start + .seconds(600))).isEmpty)
        guard case .writeUnheard(_, let status) = try #require(marked.first) else { return }
        #expect(Self.condition(status, "Connected")?.reason == "NoControllerHears")
        let stored: JSONValue = [
            "metadata": ["name": "web-1"],
            "status": [
                "hostname": "h1", "lastHeartbeatTime": "t2",
                "conditions": [
                    [
                        "type": "Synced", "status": "True", "reason": "Synced", "message": "applied",
                        "lastTransitionTime": "2026-12-02T08:00:00Z",
                    ]
                ],
            ],
        ]
        let merged = try status.merged(into: stored, heartbeatTime: nil)
        #expect(merged["hostname"]?.stringValue == "h1")
        #expect(merged["conditions"]?.arrayValue?.count == 3)
    }

    @Test func aRunnerWhoseAgentIsConnectedHereIsNotMarkedFromTheStore() {
        var state = planned()
        let silence = state.configuration.heartbeatSilence
        _ = state.attach(runner: "web-1", revision: 0, digest: nil, connection: UUID())
        _ = state.apply(InformerUpdate(changes: [storedConnected(heartbeat: "t1")], revision: 5), now: start)
        #expect(Self.unheard(state.expireSilentRunners(now: start + silence * 2)).isEmpty)
        // Stored disconnected: nothing to watch.
        var state2 = planned()
        _ = state2.apply(InformerUpdate(changes: [change(F.runner("web-1", labels: ["role": "web"]))], revision: 5), now: start)
        #expect(state2.nextSilenceDeadline() == nil)
    }

    @Test func aRunnerThatFallsSilentIsMarkedDisconnectedAtTheTimeout() {
        var state = planned()
        let digest = state.runners["web-1"]?.slice.digest
        let report = AgentReport(observedSliceRevision: 4, sliceDigest: digest, synced: true)
        let first = Self.statuses(state.record(runner: "web-1", report, now: start))
        #expect(Self.condition(first.last, "Connected")?.status == .true)
        #expect(Self.condition(first.last, "Ready")?.status == .true)
        #expect(state.nextSilenceDeadline() == start + Self.timeout)

        // Just before the timeout nothing is written; at it, Connected=False and Ready says why.
        #expect(Self.statuses(state.expireSilentRunners(now: start + Self.timeout - .milliseconds(1))).isEmpty)
        let silent = Self.statuses(state.expireSilentRunners(now: start + Self.timeout))
        #expect(silent.count == 1)
        #expect(Self.condition(silent.first, "Connected")?.reason == "HeartbeatTimeout")
        #expect(Self.condition(silent.first, "Ready")?.reason == "Disconnected")
        #expect(state.isLive(runner: "web-1", now: start + Self.timeout) == false)
        // Marked once: nothing more to wake for until the agent reports again.
        #expect(state.nextSilenceDeadline() == nil)
        #expect(Self.statuses(state.expireSilentRunners(now: start + .seconds(60))).isEmpty)

        let back = Self.statuses(state.record(runner: "web-1", report, now: start + .seconds(61)))
        #expect(Self.condition(back.last, "Connected")?.status == .true)
        #expect(state.nextSilenceDeadline() == start + .seconds(61) + Self.timeout)
    }

    @Test func heartbeatsWriteOnlyOnChangeOrOncePerInterval() {
        var state = planned()
        let digest = state.runners["web-1"]?.slice.digest
        let report = AgentReport(observedSliceRevision: 4, sliceDigest: digest, synced: true)
        #expect(Self.statuses(state.record(runner: "web-1", report, now: start)).count == 1)
        #expect(Self.statuses(state.record(runner: "web-1", report, now: start + .seconds(5))).isEmpty)
        #expect(Self.statuses(state.record(runner: "web-1", report, now: start + .seconds(60))).count == 1)
        // A report that says something new is written at once.
        let failed = AgentReport(sliceDigest: digest, synced: false, reason: "ExecNotAllowed", message: "no exec")
        let written = Self.statuses(state.record(runner: "web-1", failed, now: start + .seconds(61)))
        #expect(Self.condition(written.first, "Synced")?.reason == "ExecNotAllowed")
        #expect(Self.condition(written.first, "Ready")?.message == "Synced=False (ExecNotAllowed): no exec")
    }

    @Test func aRunnerNoAgentJoinedSaysSo() {
        var state = GatewayState(configuration: .init(heartbeatTimeout: Self.timeout))
        _ = state.apply(InformerUpdate(changes: [change(F.runner("db-1"))], revision: 1), now: .now)
        let written = Self.statuses(state.recompute(now: start))
        #expect(Self.condition(written.first, "Connected")?.reason == "NeverConnected")
        #expect(Self.condition(written.first, "Synced")?.status == .unknown)
        #expect(state.nextSilenceDeadline() == nil)
    }

    @Test func connectionsGetASnapshotThenDiffs() throws {
        var state = planned()
        let connection = UUID()
        let first = state.attach(runner: "web-1", revision: 0, digest: nil, connection: connection)
        guard case .send(let snapshot, "web-1", connection) = try #require(first.first) else {
            Issue.record("expected a message on the new connection, got \(first)")
            return
        }
        #expect(snapshot.type == .snapshot)
        #expect(Set((snapshot.objects ?? []).map(\.key.description)) == ["Route/alerts", "Action/notify"])

        // The same agent, reconnecting with what it holds, gets a keep-alive, not the snapshot again.
        let again = state.attach(runner: "web-1", revision: snapshot.revision, digest: snapshot.digest, connection: UUID())
        guard case .send(let keepalive, _, _) = try #require(again.first) else { return }
        #expect(keepalive.type == .keepalive)

        // A change of the route is sent as a diff to every connection.
        var edited = F.route("alerts", actions: ["notify"], input: "input.x == 2")
        edited["metadata"]?["generation"] = 2
        _ = state.apply(InformerUpdate(changes: [change(edited)], revision: 9), now: .now)
        let sent = state.recompute(now: start).compactMap { directive -> SliceMessage? in
            if case .send(let message, _, _) = directive { return message }
            return nil
        }
        #expect(sent.count == 2)
        #expect(sent.allSatisfy { $0.type == .diff && $0.baseRevision == snapshot.revision && $0.revision == 9 })
        #expect(sent.first?.objects?.map(\.key.description) == ["Route/alerts"])
    }

    @Test func anOverflowingConnectionIsHungUpAndADeletedRunnerRevoked() {
        var state = planned()
        let connection = UUID()
        _ = state.attach(runner: "web-1", revision: 0, digest: nil, connection: connection)
        #expect(
            state.connectionFailed(runner: "web-1", connection: connection, overflowed: true)
                == [.close(runner: "web-1", connection: connection)])
        #expect(state.keepalive(runner: "web-1").isEmpty)

        let other = UUID()
        _ = state.attach(runner: "web-1", revision: 0, digest: nil, connection: other)
        let deleted = ObjectChange(key: ObjectKey(kind: "Runner", name: "web-1"), old: F.runner("web-1"), new: nil)
        let directives = state.apply(InformerUpdate(changes: [deleted], revision: 12), now: .now)
        #expect(directives.contains(.revokeCredential(runner: "web-1")))
        #expect(directives.contains(.close(runner: "web-1", connection: other)))
        #expect(state.inputRevision == 12)
    }
}
