import Foundation
import SteadyTesting
import Testing

/// A network partition and a slow link between one agent and the controller: the agent runs in a network namespace
/// of its own, joined by a veth pair that the test cuts, heals and slows.
extension FaultInjectionEndToEndTests {
    /// Starts a controller on every address (its certificate names the veth's too) and an agent named `name` in
    /// `namespace`, reaching the controller through the veth, and waits until the runner is in sync.
    static func startPartitionable(_ name: String, namespace: NetworkNamespace) throws
        -> (controller: ControllerProcess, agent: AgentProcess)
    {
        let controller = try ControllerProcess()
        let agent = try AgentProcess(name: name)
        do {
            try controller.start(extraArguments: ["--listen", "0.0.0.0:0", "--server-name", namespace.hostAddress])
            try agent.start(
                controller: controller, joinToken: try controller.joinToken(),
                controllerURLs: "https://\(namespace.hostAddress):\(controller.port)", launcher: namespace.launcher)
        } catch {
            agent.remove()
            controller.remove()
            throw error
        }
        #expect(
            eventually(timeout: .seconds(30)) {
                FaultEnvironment.runnerCondition(controller, name, "Synced") == "True"
            },
            "\(agent.log())\n\(controller.log())")
        return (controller, agent)
    }

    /// A route named `route`, with a file action of its own, assigned to `runners`.
    static func assignedRoute(_ route: String, runners: [String]) -> String {
        EventEndToEndTests.action("to-\(route)", "{type: file, file: {path: /dev/null}}")
            + EventEndToEndTests.route(route, "{input: 'has(input.x)', actions: [to-\(route)]}")
                + """
                apiVersion: steady.dev/v1
                kind: Assignment
                metadata: {name: \(route)}
                spec: {runners: [\(runners.joined(separator: ", "))], routes: [\(route)], actions: [to-\(route)]}
                """
    }

    @Test(.enabled(if: NetworkNamespace.isAvailable, "skipped: needs root and network namespaces (ip netns, veth)"))
    func aPartitionedAgentKeepsItsSliceAndResyncsAfterTheHeal() throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let (controller, agent) = try Self.startPartitionable("island-1", namespace: namespace)
        defer {
            agent.remove()
            controller.remove()
        }
        try controller.apply(Self.assignedRoute("before-cut", runners: ["island-1"]))
        #expect(eventually { agent.sliceKeys().contains("Route/before-cut") }, "\(agent.log())")
        let keysBefore = agent.sliceKeys()

        // Cut off, the runner goes Connected=False after the heartbeat timeout; the agent keeps its slice.
        try namespace.cut()
        #expect(
            eventually(timeout: .seconds(40)) {
                FaultEnvironment.runnerCondition(controller, "island-1", "Connected") == "False"
            }, "\(controller.log())")
        try controller.apply(Self.assignedRoute("during-cut", runners: ["island-1"]))
        #expect(agent.isRunning, "\(agent.log())")
        #expect(agent.sliceKeys() == keysBefore)

        // Healed, it gets the change made meanwhile and is connected and in sync again, by itself.
        try namespace.heal()
        #expect(
            eventually(timeout: .seconds(60)) { agent.sliceKeys().contains("Route/during-cut") },
            "the change made during the partition did not arrive\n\(agent.log())")
        #expect(
            eventually(timeout: .seconds(30)) {
                FaultEnvironment.runnerCondition(controller, "island-1", "Connected") == "True"
                    && FaultEnvironment.runnerCondition(controller, "island-1", "Synced") == "True"
            }, "\(controller.log())")
        #expect(agent.log().components(separatedBy: "agent starting").count == 2, "the agent restarted")
    }

    @Test(.enabled(if: NetworkNamespace.hasNetem, "skipped: needs root, network namespaces and tc netem (sch_netem)"))
    func aSlowLinkDelaysOnlyItsOwnAgent() throws {
        let namespace = try NetworkNamespace()
        defer { namespace.remove() }
        let (controller, slow) = try Self.startPartitionable("slow-1", namespace: namespace)
        defer {
            slow.remove()
            controller.remove()
        }
        let fast = try AgentProcess(name: "fast-1")
        defer { fast.remove() }
        try fast.start(controller: controller, joinToken: try controller.joinToken())
        #expect(
            eventually(timeout: .seconds(30)) {
                FaultEnvironment.runnerCondition(controller, "fast-1", "Synced") == "True"
            },
            "\(fast.log())")

        // Every packet into the slow agent's namespace waits 3 s; the agent on loopback is not slowed.
        try namespace.delay(milliseconds: 3000)
        try controller.apply(Self.assignedRoute("both", runners: ["fast-1", "slow-1"]))
        #expect(eventually { fast.sliceKeys().contains("Route/both") }, "\(fast.log())")
        #expect(!slow.sliceKeys().contains("Route/both"), "the slow link did not delay its agent")
        // Slowed, not cut: it gets there, and stays connected.
        #expect(eventually(timeout: .seconds(30)) { slow.sliceKeys().contains("Route/both") }, "\(slow.log())")
        #expect(FaultEnvironment.runnerCondition(controller, "slow-1", "Connected") == "True")
    }
}
