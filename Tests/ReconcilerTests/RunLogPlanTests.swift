import Foundation
import Resources
import Testing

@testable import Reconciler

/// Where a RemoteRun's `log` is answered from with several controller replicas.
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
        // Followed, it still looks out for replicas named later.
        #expect(allHere.followsHoldersAsNamed)
        #expect(!RunLogPlan(ownURL: Self.b, isProxied: true, holders: [:]).followsHoldersAsNamed)
        #expect(!RunLogPlan(ownURL: nil, isProxied: false, holders: [:]).followsHoldersAsNamed)
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
}
