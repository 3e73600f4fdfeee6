import Foundation
import SteadyTesting
import Testing

/// Events taken in by a real agent: its own actions run on the runner, the controller's after them across the hop,
/// and nothing acknowledged is lost while the controller is away or when the agent is killed.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RunnerEventEndToEndTests {
    static func configuration(sink: EventSink) -> String {
        let retry = "retry: {attempts: 100, backoff: 100ms, maxBackoff: 300ms}"
        return ["r1", "r2", "c1"].map {
            EventEndToEndTests.action($0, "{type: webhook, webhook: {url: 'http://127.0.0.1:\(sink.port)/\($0)'}, \(retry)}")
        }.joined()
            + EventEndToEndTests.route("mixed", "{input: 'has(input.n)', actions: [r1, r2, c1], serializeActions: true}")
            + """
            apiVersion: steady.dev/v1
            kind: Assignment
            metadata: {name: on-web}
            spec: {runners: [web-1], routes: [mixed], actions: [r1, r2]}

            """
    }

    /// The paths each event reached, in the order the sink received them.
    static func paths(of n: Int, in sink: EventSink) -> [String] {
        sink.requests.filter { $0.body == #"{"n":\#(n)}"# }.map(\.path)
    }

    /// The paths an event reached, each once, in the order it first reached them. Delivery is at least once: a
    /// request an agent had sent just before SIGKILL can still reach the sink, and the restarted agent sends it again.
    static func firstDeliveries(of n: Int, in sink: EventSink) -> [String] {
        var seen: [String] = []
        for path in paths(of: n, in: sink) where !seen.contains(path) { seen.append(path) }
        return seen
    }

    @Test func aMixedRouteRunsTheRunnersActionsThenTheControllersInOrderEvenWhileTheControllerIsAway() async throws {
        let sink = try await EventSink()
        defer { sink.stop() }
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        try controller.apply(Self.configuration(sink: sink))
        let port = try EventEndToEndTests.freePort()
        let agent = try AgentProcess(name: "web-1")
        defer {
            agent.stop(signal: SIGKILL)
            agent.stateDirectory.remove()
        }
        try agent.start(
            controller: controller, joinToken: try controller.joinToken(),
            extraArguments: ["--events-listen", "127.0.0.1:\(port)"])
        #expect(await EventEndToEndTests.waitUntil { agent.sliceKeys().contains("Route/mixed") }, "\(agent.log())")
        // The first event also waits for the agent's route table.
        var probe = 0
        while Self.paths(of: 0, in: sink).count < 3 && probe < 100 {
            if Self.paths(of: 0, in: sink).isEmpty { _ = try await EventEndToEndTests.post(#"{"n":0}"#, port: port) }
            try await Task.sleep(for: .milliseconds(200))
            probe += 1
        }
        for n in 1...5 { _ = try await EventEndToEndTests.post(#"{"n":\#(n)}"#, port: port) }
        #expect(
            await EventEndToEndTests.waitUntil { (1...5).allSatisfy { Self.paths(of: $0, in: sink).count >= 3 } },
            "\(agent.log())\n\(controller.log())")
        for n in 1...5 {
            #expect(Self.paths(of: n, in: sink) == ["/r1", "/r2", "/c1"], "event \(n)")
        }
        // The runner's executions reach the controller.
        if let listed = try controller.kubectl(["get", "--raw", "/apis/steady.dev/v1/executions?labelSelector=route=mixed"]) {
            #expect(listed.output.contains("\"location\":\"web-1\""))
            #expect(listed.output.contains("\"location\":\"controller\""))
        }

        // With the controller away, the runner keeps taking events and running its own actions.
        controller.stop()
        for n in 10...12 {
            let answer = try await EventEndToEndTests.post(#"{"n":\#(n)}"#, port: port)
            #expect(answer.status == 202)
        }
        #expect(await EventEndToEndTests.waitUntil { (10...12).allSatisfy { Self.paths(of: $0, in: sink).count == 2 } })
        #expect((10...12).allSatisfy { !Self.paths(of: $0, in: sink).contains("/c1") })
        // Back, it runs the controller's actions it owes.
        try controller.start(port: controller.port)
        #expect(
            await EventEndToEndTests.waitUntil(timeout: .seconds(60)) {
                (10...12).allSatisfy { Self.paths(of: $0, in: sink) == ["/r1", "/r2", "/c1"] }
            }, "\(agent.log())")
    }

    @Test func sigkillOfAnAgentLosesNoAcknowledgedEvent() async throws {
        let sink = try await EventSink()
        defer { sink.stop() }
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        try controller.apply(Self.configuration(sink: sink))
        let port = try EventEndToEndTests.freePort()
        let agent = try AgentProcess(name: "web-1")
        defer {
            agent.stop(signal: SIGKILL)
            agent.stateDirectory.remove()
        }
        let arguments = ["--events-listen", "127.0.0.1:\(port)"]
        try agent.start(controller: controller, joinToken: try controller.joinToken(), extraArguments: arguments)
        #expect(await EventEndToEndTests.waitUntil { agent.sliceKeys().contains("Route/mixed") }, "\(agent.log())")
        var probe = 0
        while Self.paths(of: 0, in: sink).count < 3 && probe < 100 {
            if Self.paths(of: 0, in: sink).isEmpty { _ = try await EventEndToEndTests.post(#"{"n":0}"#, port: port) }
            try await Task.sleep(for: .milliseconds(200))
            probe += 1
        }
        sink.setDown(true)
        var accepted: [Int] = []
        for n in 1...30 where try await EventEndToEndTests.post(#"{"n":\#(n)}"#, port: port).status == 202 {
            accepted.append(n)
        }
        #expect(accepted.count == 30)
        agent.stop(signal: SIGKILL)
        sink.setDown(false)
        try agent.start(controller: controller, joinToken: nil, extraArguments: arguments)
        #expect(
            await EventEndToEndTests.waitUntil(timeout: .seconds(90)) {
                accepted.allSatisfy { Self.firstDeliveries(of: $0, in: sink) == ["/r1", "/r2", "/c1"] }
            },
            "\(accepted.map { "\($0): \(Self.paths(of: $0, in: sink))" }.joined(separator: "; "))\n\(agent.log())")
    }
}
