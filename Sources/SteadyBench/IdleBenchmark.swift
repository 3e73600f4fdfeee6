import Client
import Foundation

/// `steady-bench idle [--seconds N]`: the CPU an idle controller and one connected agent use while nothing
/// changes. It starts a controller watching a manifests directory that holds a small slice for one runner, and a
/// real `steady agent` as that runner; waits until it is synced, lets things settle, then counts the CPU both
/// processes use over N seconds.
enum IdleBenchmark {
    static func run(seconds: Int, binaries: URL) async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steady-idle-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let manifests = directory.appendingPathComponent("manifests")
        try? FileManager.default.createDirectory(at: manifests, withIntermediateDirectories: true)
        let manifest = manifests.appendingPathComponent("idle.yaml")
        let (controller, kubeconfig) = startController(
            in: directory, logLevel: "warning", extraArguments: ["--manifests", manifests.path])
        defer { stopController(controller) }
        let environment = ["STEADY_KUBECONFIG": kubeconfig]
        let steady = binaries.appendingPathComponent("steady").path
        guard let cluster = try? Kubeconfig.load(from: URL(fileURLWithPath: kubeconfig)).currentCluster else {
            fail("cannot read \(kubeconfig)")
        }
        let token = ConvergenceBenchmark.output(steady, ["token", "create", "--ttl", "1h"], environment: environment)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: steady)
        agent.arguments = [
            "agent", "--controller", cluster.server, "--join-token", token, "--name", "idle-1",
            "--state-dir", directory.appendingPathComponent("agent").path, "--log-level", "warning",
        ]
        do { try agent.run() } catch { fail("cannot start the agent: \(error)") }
        defer {
            agent.terminate()
            agent.waitUntilExit()
        }
        let slice = """
            apiVersion: steady.dev/v1
            kind: Action
            metadata: {name: idle-log}
            spec: {type: stdout}
            ---
            apiVersion: steady.dev/v1
            kind: Route
            metadata: {name: idle-route}
            spec: {input: 'input.x == 1', actions: [idle-log], template: idle-template}
            ---
            apiVersion: steady.dev/v1
            kind: Template
            metadata: {name: idle-template}
            spec: {type: raw-json}
            ---
            apiVersion: steady.dev/v1
            kind: Assignment
            metadata: {name: idle}
            spec: {runners: [idle-1], routes: [idle-route], actions: [idle-log]}
            """
        try? slice.write(to: manifest, atomically: true, encoding: .utf8)
        let waited = runTimed(
            steady, ["wait", "--for=converged", "-f", manifest.path, "--timeout", "60s"], environment: environment)
        if waited.status != 0 { fail("steady wait --for=converged failed with status \(waited.status)") }
        // Let start-up work (first heartbeat writes, compaction's first pass) finish before counting.
        try? await Task.sleep(for: .seconds(3))
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let before = (
            ConvergenceBenchmark.cpuSeconds(controller.processIdentifier),
            ConvergenceBenchmark.cpuSeconds(agent.processIdentifier)
        )
        try? await Task.sleep(for: .seconds(seconds))
        let after = (
            ConvergenceBenchmark.cpuSeconds(controller.processIdentifier),
            ConvergenceBenchmark.cpuSeconds(agent.processIdentifier)
        )
        func line(_ name: String, _ used: Double, pid: Int32) -> String {
            let share = used / Double(seconds) * 100
            return String(
                format: "  %@: %.0f clock ticks in %d s, %.2f %% of a core, RSS %d KB", name, used * ticksPerSecond,
                seconds, share, ConvergenceBenchmark.rssKilobytes(pid))
        }
        say("idle benchmark: a watched manifests directory, one agent holding a 3-object slice, nothing changing, \(seconds) s")
        say(line("controller", after.0 - before.0, pid: controller.processIdentifier))
        say(line("agent", after.1 - before.1, pid: agent.processIdentifier))
    }
}
