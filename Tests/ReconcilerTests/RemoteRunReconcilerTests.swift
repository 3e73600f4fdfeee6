import Resources
import Testing

@testable import Reconciler

@Suite(.timeLimit(.minutes(5))) struct RemoteRunReconcilerTests {
    typealias F = ControllerFixtures

    static func remoteRun(
        _ name: String, target: JSONValue, results: [JSONValue]? = nil, phase: String = "Pending"
    ) -> JSONValue {
        var run = F.object("RemoteRun", name, spec: ["target": target, "conditions": ["force_inventory"]])
        if let results { run["status"] = ["phase": .string(phase), "results": .array(results)] }
        return run
    }

    static let fleet = [
        F.runner("web-1", labels: ["site": "paris"]), F.runner("web-2", labels: ["site": "paris"]),
        F.runner("db-1", labels: ["site": "lyon"]),
    ]

    @Test func aSelectorTargetsTheMatchingRunners() throws {
        let run = Self.remoteRun("inventory", target: ["runnerSelector": ["matchLabels": ["site": "paris"]]])
        let status = try RemoteRunReconciler().status(of: run, in: F.cache([run] + Self.fleet))
        let ready = try #require(F.ready(status))
        #expect(ready.status == .true)
        #expect(ready.message == "accepted: targets 2 runners: web-1, web-2")
        #expect(status["phase"] == "Pending")
        #expect(status["results"] == [["runner": "web-1", "phase": "Pending"], ["runner": "web-2", "phase": "Pending"]])
        #expect(status["counts"]?["total"] == 2)
        #expect(status["counts"]?["pending"] == 2)
    }

    @Test func allTargetsEveryRunner() throws {
        let run = Self.remoteRun("everyone", target: ["all": true])
        let status = try RemoteRunReconciler().status(of: run, in: F.cache([run] + Self.fleet))
        #expect(status["counts"]?["total"] == 3)
    }

    @Test func missingAndUnmatchedTargetsAreNotReady() throws {
        let named = Self.remoteRun("named", target: ["runners": ["web-1", "web-9"]])
        let status = try RemoteRunReconciler().status(of: named, in: F.cache([named] + Self.fleet))
        let ready = try #require(F.ready(status))
        #expect(ready.status == .false)
        #expect(ready.reason == "MissingRunner")
        #expect(ready.message == #"runner "web-9" not found"#)
        #expect(status["results"] == [["runner": "web-1", "phase": "Pending"]])

        let nobody = Self.remoteRun("nobody", target: ["runnerSelector": ["matchLabels": ["site": "oslo"]]])
        let empty = try RemoteRunReconciler().status(of: nobody, in: F.cache([nobody] + Self.fleet))
        #expect(F.ready(empty)?.reason == "NoMatchingRunners")
        #expect(F.ready(empty)?.message == "target.runnerSelector matches no runner")
    }

    @Test func resultsAlreadyRecordedAreKept() throws {
        let run = Self.remoteRun(
            "inventory", target: ["all": true],
            results: [["runner": "web-1", "phase": "Succeeded", "exitCode": 0]])
        let status = try RemoteRunReconciler().status(of: run, in: F.cache([run] + Self.fleet))
        #expect(status["phase"] == "Pending")
        #expect(status["results"]?.arrayValue?.first == ["runner": "db-1", "phase": "Pending"])
        #expect(status["results"]?.arrayValue?.last == ["runner": "web-2", "phase": "Pending"])
        #expect(status["results"]?.arrayValue?[1] == ["runner": "web-1", "phase": "Succeeded", "exitCode": 0])
        #expect(status["counts"]?["succeeded"] == 1)
        #expect(status["counts"]?["pending"] == 2)
    }

    @Test func aPendingRunnerThatIsNoLongerTargetedLeaves() throws {
        let run = Self.remoteRun(
            "named", target: ["runners": ["web-1"]],
            results: [["runner": "web-2", "phase": "Pending"], ["runner": "db-1", "phase": "Failed", "exitCode": 1]])
        let status = try RemoteRunReconciler().status(of: run, in: F.cache([run] + Self.fleet))
        #expect(status["results"]?.arrayValue?.compactMap { $0["runner"]?.stringValue } == ["db-1", "web-1"])
        #expect(status["counts"]?["failed"] == 1)
    }

    /// Once dispatch began, the dispatcher owns the results: a runner matching later is not added, and one no
    /// longer matching keeps its entry.
    @Test func theRunnersOfARunUnderWayAreFixed() throws {
        let run = Self.remoteRun(
            "under-way", target: ["runners": ["web-1"]],
            results: [["runner": "web-2", "phase": "Pending"], ["runner": "db-1", "phase": "Running"]],
            phase: "Running")
        let status = try RemoteRunReconciler().status(of: run, in: F.cache([run] + Self.fleet))
        #expect(status["results"]?.arrayValue?.compactMap { $0["runner"]?.stringValue } == ["db-1", "web-2"])
        #expect(status["phase"] == "Running")
    }

    @Test func aRunnerChangeRequeuesTheRemoteRunsThatTargetIt() throws {
        let selected = Self.remoteRun("selected", target: ["runnerSelector": ["matchLabels": ["site": "paris"]]])
        let named = Self.remoteRun("named", target: ["runners": ["db-1"]])
        let cache = F.cache([selected, named] + Self.fleet)
        let change = ObjectChange(
            key: ObjectKey(kind: "Runner", name: "web-1"), old: Self.fleet[0],
            new: F.runner("web-1", labels: ["site": "lyon"]))
        let keys = ReconcileTriggers.keys(for: change, in: cache).map(\.name)
        #expect(keys.contains("selected"))
        #expect(!keys.contains("named"))
    }
}
