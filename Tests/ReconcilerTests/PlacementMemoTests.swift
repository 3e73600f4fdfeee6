import Resources
import Testing

@testable import Reconciler

/// Selector matches are memoized: status writes leave the memo alone, relabelling a Runner does not.
@Suite(.timeLimit(.minutes(5))) struct PlacementMemoTests {
    typealias F = ControllerFixtures

    static func event(_ object: JSONValue, revision: Int64) -> StoreEvent {
        StoreEvent(
            type: .modified,
            object: StoredObject(
                kind: object["kind"]?.stringValue ?? "", name: object["metadata"]?["name"]?.stringValue ?? "",
                value: object.jsonData(), createRevision: 1, modRevision: revision),
            revision: revision)
    }

    @Test func statusWritesKeepTheMemoAndRelabellingRefreshesIt() throws {
        let assignment = F.assignment("web", selector: ["role": "web"], actions: ["notify"])
        let web = F.runner("web-1", labels: ["role": "web"])
        let cache = F.cache([assignment, web, F.runner("db-1", labels: ["role": "db"])])
        let placements = PlacementResolver()
        #expect(placements.matchedRunners(ofAssignment: "web", in: cache) == ["web-1"])

        // A Runner reports (its status changes) and the Assignment's status is rewritten: same version.
        let version = cache.version(of: "Runner")
        var synced = web
        synced["status"] = ["conditions": [["type": "Synced", "status": "True"]]]
        _ = try cache.apply(Self.event(synced, revision: 100))
        var counted = assignment
        counted["status"] = ["matchedRunnerCount": 1]
        _ = try cache.apply(Self.event(counted, revision: 101))
        #expect(cache.version(of: "Runner") == version)
        #expect(placements.matchedRunners(ofAssignment: "web", in: cache) == ["web-1"])

        // db-1 becomes a web runner: the match follows.
        _ = try cache.apply(Self.event(F.runner("db-1", labels: ["role": "web"]), revision: 102))
        #expect(cache.version(of: "Runner") != version)
        #expect(placements.matchedRunners(ofAssignment: "web", in: cache) == ["db-1", "web-1"])
    }
}
