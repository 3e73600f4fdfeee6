import Agent
import AsyncHTTPClient
import Foundation
import Logging
import Resources

/// `steady-bench converge --agents N`: N in-process agents over the real protocol against a real
/// controller process; prints the time from an `apply` that changes every runner's slice until every
/// agent holds it, and the controller's RSS.
enum ConvergenceBenchmark {
    static func run(agents count: Int, binaries: URL) async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steady-converge-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (controller, kubeconfig) = startController(in: directory, logLevel: "error")
        defer {
            controller.terminate()
            controller.waitUntilExit()
        }
        let environment = ["STEADY_KUBECONFIG": kubeconfig]
        let server = (try? String(contentsOfFile: kubeconfig, encoding: .utf8))?.split(separator: "\n")
            .first { $0.contains("server:") }?.split(separator: " ").last.map(String.init) ?? ""
        let token = output(binaries.appendingPathComponent("steady").path, ["token", "create", "--ttl", "1h"], environment: environment)
        guard let joinToken = try? AgentJoinToken(parsing: token.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            fail("cannot create a join token")
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let client = Agent.makeHTTPClient(maximumConnections: count + max(64, count / 10))
        let baseline = rss(controller.processIdentifier)
        let agents = (0..<count).map { index in
            Agent(
                configuration: AgentConfiguration(
                    controllerURL: server, name: "bench-\(index)", labels: ["role": "bench"], joinToken: joinToken,
                    heartbeatInterval: .seconds(30)),
                sliceStorage: InMemoryAgentStorage(), identityStorage: InMemoryAgentStorage(), httpClient: client,
                logger: logger)
        }
        await withTaskGroup(of: Void.self) { group in
            for agent in agents { group.addTask { try? await agent.run() } }
            let clock = ContinuousClock()
            // Wait until every agent is connected and holds its (empty) first slice.
            let start = clock.now
            while await !allHold(agents, { _ in true }) {
                if clock.now - start > .seconds(300) { fail("agents did not connect") }
                try? await Task.sleep(for: .milliseconds(50))
            }
            print("converge benchmark: \(count) agents connected in \(clock.now - start)")
            let connectedRSS = rss(controller.processIdentifier)
            let manifest = """
                apiVersion: steady.dev/v1
                kind: Action
                metadata: {name: bench-action}
                spec: {type: stdout}
                ---
                apiVersion: steady.dev/v1
                kind: Route
                metadata: {name: bench-route}
                spec: {input: 'input.x == 1', actions: [bench-action]}
                ---
                apiVersion: steady.dev/v1
                kind: Assignment
                metadata: {name: bench}
                spec:
                  runnerSelector: {matchLabels: {role: bench}}
                  routes: [bench-route]
                  actions: [bench-action]
                """
            let manifestFile = directory.appendingPathComponent("bench.yaml")
            try? manifest.write(to: manifestFile, atomically: true, encoding: .utf8)
            let applyStart = clock.now
            _ = output(binaries.appendingPathComponent("apply").path, ["-f", manifestFile.path], environment: environment)
            let applied = clock.now
            while await !allHold(agents, { $0.objects.count == 2 }) {
                if clock.now - applyStart > .seconds(300) { fail("agents did not converge") }
                try? await Task.sleep(for: .milliseconds(5))
            }
            let converged = clock.now
            print("  apply took \(applied - applyStart); every agent held the new slice \(converged - applyStart) after apply started")
            print("  controller RSS: \(baseline) before agents, \(connectedRSS) with \(count) connected")
            group.cancelAll()
        }
        try? await client.shutdown()
    }

    static func allHold(_ agents: [Agent], _ condition: (RunnerSlice) -> Bool) async -> Bool {
        for agent in agents {
            let state = await agent.state
            let slice = await state.currentSlice
            guard slice.revision > 0, condition(slice) else { return false }
        }
        return true
    }

    static func output(_ program: String, _ arguments: [String], environment: [String: String]) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { return "" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    static func rss(_ pid: Int32) -> String {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return "unknown" }
        return line.dropFirst("VmRSS:".count).trimmingCharacters(in: .whitespaces)
    }
}
