import Foundation
import Resources
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

    /// A route named `route`, with a file action of its own, assigned to `runners`; with `templateBody`, the route
    /// also renders a text Template of its own with that body.
    static func assignedRoute(_ route: String, runners: [String], templateBody: String? = nil) -> String {
        let template = templateBody.map { body in
            """
            apiVersion: steady.dev/v1
            kind: Template
            metadata: {name: \(route)}
            spec: {type: text, body: '\(body)'}
            ---

            """
        }
        let rendering = template == nil ? "" : ", template: \(route)"
        return (template ?? "")
            + EventEndToEndTests.action("to-\(route)", "{type: file, file: {path: /dev/null}}")
            + EventEndToEndTests.route(route, "{input: 'has(input.x)', actions: [to-\(route)]\(rendering)}")
            + """
            apiVersion: steady.dev/v1
            kind: Assignment
            metadata: {name: \(route)}
            spec: {runners: [\(runners.joined(separator: ", "))], routes: [\(route)], actions: [to-\(route)]}
            """
    }

    /// The digest recorded with an agent's last good slice (it covers every object), nil before the first.
    static func sliceDigest(of agent: AgentProcess) -> String? {
        (try? JSONValue.parse(Data(agent.sliceText().utf8)))?["digest"]?.stringValue
    }

    /// The slice revisions an agent's log says it applied, in the order it applied them.
    static func appliedRevisions(in log: String) -> [Int] {
        log.split(separator: "\n").filter { $0.contains("slice applied") }.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("steady.revision=") }
                .flatMap { Int($0.dropFirst("steady.revision=".count)) }
        }
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

    @Test(
        .enabled(
            if: NetworkNamespace.linkShaping != nil,
            "skipped: needs root, network namespaces, and tc netem (sch_netem) or tc tbf and nft"))
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
        let revisionsBefore = Self.appliedRevisions(in: slow.log())

        // The slow agent's link carries 16 kbit/s each way behind a 2 s queue and loses 10% of its packets; the
        // agent on loopback is not slowed. The change carries a template of about 14 KB of random text (templates
        // are limited to 16 KB), which takes the slow link seconds of sending and resending.
        try namespace.slow(bitsPerSecond: 16_000, lossPercent: 10)
        let body = (0..<380).map { _ in UUID().uuidString }.joined(separator: " ")
        try controller.apply(Self.assignedRoute("both", runners: ["fast-1", "slow-1"], templateBody: body))
        let change: Set = ["Template/both", "Route/both", "Action/to-both"]
        #expect(eventually { fast.sliceKeys().isSuperset(of: change) }, "\(fast.log())")
        // The fast agent has the change while the slow one does not: it did not wait for the slow one.
        #expect(!slow.sliceKeys().isSuperset(of: change), "the slow link did not delay its agent")

        // Slowed, not cut: it gets there by itself, with the same objects as the fast agent, and is connected and
        // in sync (a stream the loss broke is reopened by the agent itself).
        #expect(
            eventually(timeout: .seconds(120)) {
                slow.sliceKeys().isSuperset(of: change) && Self.sliceDigest(of: slow) == Self.sliceDigest(of: fast)
            },
            "the slow agent never got the fast one's slice\n\(slow.log())")
        #expect(slow.sliceText().contains(body))
        #expect(
            eventually(timeout: .seconds(60)) {
                FaultEnvironment.runnerCondition(controller, "slow-1", "Connected") == "True"
                    && FaultEnvironment.runnerCondition(controller, "slow-1", "Synced") == "True"
            }, "\(slow.log())\n\(controller.log())")
        // Nothing applied twice or out of order, and the agent never restarted.
        let revisionsAfter = Self.appliedRevisions(in: slow.log()).dropFirst(revisionsBefore.count)
        #expect(!revisionsAfter.isEmpty && zip(revisionsAfter, revisionsAfter.dropFirst()).allSatisfy { $0 < $1 })
        #expect(slow.log().components(separatedBy: "agent starting").count == 2, "the slow agent restarted")
    }
}
