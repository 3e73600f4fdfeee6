import Foundation
import Logging
import Prometheus
import Resources
import SteadyTesting
import Testing

@testable import Reconciler

/// Route, Action and Assignment status say where each is placed and how many of those runners hold its current
/// generation; the counts come from what agents report, gathered in batches.
@Suite(.timeLimit(.minutes(5))) struct PlacementSyncTests {
    typealias F = ControllerFixtures

    static func fleet(routeGeneration: Int64 = 1) -> [JSONValue] {
        var route = F.route("r", actions: ["a"])
        route["metadata"]?["generation"] = .int(routeGeneration)
        return [
            route, F.action("a"), F.runner("web-1", labels: ["role": "web"]),
            F.runner("web-2", labels: ["role": "web"]), F.runner("db-1", labels: ["role": "db"]),
            F.assignment("web", selector: ["role": "web"], routes: ["r"], actions: ["a"]),
        ]
    }

    /// The slice an agent of a web runner holds, with the route at `routeGeneration`.
    static func heldSlice(routeGeneration: Int64 = 1) -> SlicePlanner.Slice {
        let objects = fleet(routeGeneration: routeGeneration)
        return SlicePlanner.Slice(objects: [
            SliceKey(kind: RouteSpec.kind, name: "r"): SlicePlanner.sliceForm(of: objects[0]),
            SliceKey(kind: ActionSpec.kind, name: "a"): SlicePlanner.sliceForm(of: objects[1]),
        ])
    }

    static func synced(_ status: JSONValue) -> Condition? {
        StatusReport.existingConditions(of: ["status": status])[type: "Synced"]
    }

    @Test func statusCountsTheRunnersHoldingTheCurrentGeneration() throws {
        let index = RunnerSyncIndex()
        let placements = PlacementResolver(syncIndex: index)
        let fleet = Self.fleet()
        let cache = F.cache(fleet)
        let route = RouteReconciler(placements: placements)
        let action = ActionReconciler(placements: placements)
        let assignment = AssignmentReconciler(placements: placements)

        var status = try route.status(of: fleet[0], in: cache)
        #expect(status["placement"]?["runners"] == ["web-1", "web-2"])
        #expect(status["placement"]?["runnerCount"] == 2)
        #expect(status["placement"]?["syncedRunners"] == 0)
        #expect(Self.synced(status)?.status == .false)
        #expect(Self.synced(status)?.reason == "SyncPending")
        #expect(F.ready(status)?.status == .true, "a route is ready to run before every runner holds it")

        index.set(runner: "web-1", holds: Self.heldSlice())
        status = try route.status(of: fleet[0], in: cache)
        #expect(status["placement"]?["syncedRunners"] == 1)
        #expect(Self.synced(status)?.message == "1 of 2 runners hold the route and its runner actions at their current generation")
        var assigned = try assignment.status(of: fleet[5], in: cache)
        #expect(assigned["syncedRunners"] == 1)
        #expect(F.ready(assigned)?.status == .false)
        #expect(F.ready(assigned)?.reason == "SyncPending")

        index.set(runner: "web-2", holds: Self.heldSlice())
        status = try route.status(of: fleet[0], in: cache)
        #expect(status["placement"]?["syncedRunners"] == 2)
        #expect(Self.synced(status)?.status == .true)
        let actionStatus = try action.status(of: fleet[1], in: cache)
        #expect(actionStatus["placement"]?["runners"] == ["web-1", "web-2"])
        #expect(actionStatus["placement"]?["syncedRunners"] == 2)
        #expect(Self.synced(actionStatus)?.status == .true)
        assigned = try assignment.status(of: fleet[5], in: cache)
        #expect(assigned["matchedRunners"] == ["web-1", "web-2"])
        #expect(F.ready(assigned)?.status == .true)

        // A new generation of the route is held by nobody until the agents report it; the action still is.
        let changed = Self.fleet(routeGeneration: 2)
        let newer = F.cache(changed)
        status = try route.status(of: changed[0], in: newer)
        #expect(status["placement"]?["syncedRunners"] == 0)
        #expect(Self.synced(status)?.status == .false)
        #expect(try action.status(of: changed[1], in: newer)["placement"]?["syncedRunners"] == 2)
        #expect(F.ready(try assignment.status(of: changed[5], in: newer))?.status == .false)

        // A runner whose agent stops reporting the wanted slice no longer counts.
        index.set(runner: "web-2", holds: nil)
        #expect(try action.status(of: fleet[1], in: cache)["placement"]?["syncedRunners"] == 1)
    }

    @Test func withoutAgentTrackingNothingIsCounted() throws {
        let fleet = Self.fleet()
        let status = try RouteReconciler(placements: PlacementResolver()).status(of: fleet[0], in: F.cache(fleet))
        #expect(status["placement"]?["runners"] == ["web-1", "web-2"])
        #expect(status["placement"]?["syncedRunners"] == nil)
        #expect(Self.synced(status) == nil)
        #expect(F.ready(try AssignmentReconciler(placements: PlacementResolver()).status(of: fleet[5], in: F.cache(fleet)))?.status == .true)
    }

    @Test func manyRunnersSyncingOneSliceAreOneChange() {
        let index = RunnerSyncIndex()
        let slice = Self.heldSlice()
        for number in 0..<1000 { index.set(runner: "web-\(number)", holds: slice) }
        #expect(index.takeChangedKeys() == [SliceKey(kind: RouteSpec.kind, name: "r"), SliceKey(kind: ActionSpec.kind, name: "a")])
        #expect(index.takeChangedKeys().isEmpty)
        // Reporting the same slice again is no change.
        index.set(runner: "web-1", holds: slice)
        #expect(index.takeChangedKeys().isEmpty)
    }

    /// The whole path in one process: agents report through the gateway, the controller writes Route status, and
    /// hundreds of runners syncing cost the route a few status writes, not hundreds.
    @Test func reportsReachRouteStatusInBatches() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        let gateway = AgentGateway(
            objects: objects, credentials: AgentCredentials(store: fixture.store, adminToken: "admin-token"),
            configuration: .init(batchInterval: .milliseconds(2)), logger: Logger(label: "test"))
        let manager = ControllerManager(
            objects: objects, registry: PrometheusCollectorRegistry(), logger: Logger(label: "test"),
            syncIndex: gateway.syncIndex)
        let runners = (0..<200).map { "web-\($0)" }
        let fleet = Self.fleet().filter { $0["kind"] != "Runner" } + runners.map { F.runner($0, labels: ["role": "web"]) }
        for object in fleet {
            _ = try await objects.create(
                Kinds.info(forKind: object["kind"]?.stringValue ?? "")!, body: object, options: WriteOptions())
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await gateway.run() }
            group.addTask { try await manager.run() }
            // What each agent would hold: the first message of its stream once the gateway has planned it.
            var digests: [String: (revision: Int64, digest: String)] = [:]
            try await waitUntil {
                for runner in runners where digests[runner] == nil {
                    var stream = await gateway.connect(runner: runner, revision: 0, digest: nil).makeAsyncIterator()
                    if let first = await stream.next(), (first.objects ?? []).count == 2, let digest = first.digest {
                        digests[runner] = (first.revision, digest)
                    }
                }
                return digests.count == runners.count
            }
            try await waitUntil { try await Self.route(objects)["placement"]?["runnerCount"] == 200 }
            // A large fleet is counted, and only the first names are listed.
            let listed = try await Self.route(objects)["placement"]?["runners"]?.arrayValue
            #expect(listed?.count == PlacementResolver.listedRunnerLimit)
            #expect(listed?.first == "web-0")
            let before = try await fixture.store.currentRevision()
            for runner in runners {
                let held = try #require(digests[runner])
                await gateway.report(
                    runner: runner,
                    AgentReport(observedSliceRevision: held.revision, sliceDigest: held.digest, synced: true))
            }
            try await waitUntil { try await Self.route(objects)["placement"]?["syncedRunners"] == 200 }
            let status = try await Self.route(objects)
            #expect(Self.synced(status)?.status == .true)
            try await waitUntil {
                let assignment = try await objects.get(Kinds.assignment, name: "web")
                return F.ready(assignment["status"] ?? .null)?.status == .true
            }

            var writes = 0
            let after = try await fixture.store.currentRevision()
            // Every kind, so that the watch reaches `after` whichever kind was written last.
            for try await event in try await fixture.store.watch(kind: nil, fromRevision: before) {
                if event.object.kind == RouteSpec.kind && event.revision > before { writes += 1 }
                if event.revision >= after { break }
            }
            // Batched: far fewer writes than reports. How many batches form depends on how busy the machine is
            // (21 were seen with a release build beside the tests), so the bound leaves room; one write per report
            // would be 200.
            #expect(writes < 50, "200 runners syncing wrote the route's status \(writes) times")
            group.cancelAll()
        }
    }

    static func route(_ objects: ObjectService) async throws -> JSONValue {
        try await objects.get(Kinds.route, name: "r")["status"] ?? .null
    }
}
