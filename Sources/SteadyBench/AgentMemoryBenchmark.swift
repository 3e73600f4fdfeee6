import Client
import Foundation
import Resources

/// `steady-bench agent-memory [--idle SECONDS] [--agent "PATH [SUBCOMMAND]"]`: what one idle agent costs its host.
///
/// Starts a controller and one real agent process, applies a slice of three objects (a route, its action and its
/// template), waits until the controller records the Runner `Synced=True`, lets the agent idle, and prints its
/// RSS (and how much of it is anonymous memory and how much mapped files), its peak RSS, its threads, and the CPU
/// it used while idle.
///
/// The agent is `steady-agent` beside this program unless `--agent` names another command, such as
/// `"/opt/old/steady agent"` to measure an older build against the same controller.
enum AgentMemoryBenchmark {
    struct Options {
        /// How long the agent idles, holding its slice, before it is measured.
        var idleSeconds = 30
        /// The agent's program and the arguments that come before its flags.
        var agentCommand: [String] = []
    }

    static func run(_ options: Options, binaries: URL) async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steady-agent-memory-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (controller, kubeconfig) = startController(in: directory.appendingPathComponent("controller"), logLevel: "error")
        defer { stopController(controller) }
        let environment = ["STEADY_KUBECONFIG": kubeconfig]
        guard let cluster = try? Kubeconfig.load(from: URL(fileURLWithPath: kubeconfig)).currentCluster else {
            fail("cannot read \(kubeconfig)")
        }
        let token = ConvergenceBenchmark.output(
            binaries.appendingPathComponent("steady").path, ["token", "create", "--ttl", "1h"], environment: environment
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { fail("cannot create a join token") }
        guard let client = try? APIClient(configuration: .init(server: cluster.server, caPEM: cluster.caPEM, token: cluster.token))
        else { fail("cannot make an API client") }

        let command = options.agentCommand.isEmpty ? [binaries.appendingPathComponent("steady-agent").path] : options.agentCommand
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: command[0])
        agent.arguments = Array(command.dropFirst()) + [
            "--controller", cluster.server, "--join-token", token, "--name", "bench-1", "--labels", "role=bench",
            "--state-dir", directory.appendingPathComponent("agent").path, "--log-level", "warning",
        ]
        do { try agent.run() } catch { fail("cannot start the agent \(command[0]): \(error)") }
        defer {
            agent.terminate()
            agent.waitUntilExit()
        }
        let pid = agent.processIdentifier
        say("agent-memory benchmark: \(command.joined(separator: " ")), agent pid \(pid), controller pid \(controller.processIdentifier)")

        guard let listed = try? await client.list(Kinds.runner) else { fail("cannot list runners") }
        async let synced = ConvergenceBenchmark.waitUntilSynced(client: client, runners: 1, from: listed.resourceVersion)
        let manifestFile = directory.appendingPathComponent("slice.yaml")
        try? ConvergenceBenchmark.benchManifest.write(to: manifestFile, atomically: true, encoding: .utf8)
        let applied = runTimed(binaries.appendingPathComponent("apply").path, ["-f", manifestFile.path], environment: environment)
        if applied.status != 0 { fail("apply failed with status \(applied.status)") }
        guard await synced != nil else { fail("the agent did not sync its slice within 600 s") }
        guard agent.isRunning else { fail("the agent exited with status \(agent.terminationStatus)") }
        try? await client.shutdown()
        say("  synced: Runner bench-1 holds route, action and template")

        let cpuBefore = ConvergenceBenchmark.cpuSeconds(pid)
        try? await Task.sleep(for: .seconds(options.idleSeconds))
        let cpuIdle = ConvergenceBenchmark.cpuSeconds(pid) - cpuBefore
        let status = procFields("/proc/\(pid)/status")
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").count) ?? 0
        func megabytes(_ kilobytes: Int?) -> String {
            kilobytes.map { String(format: "%.1f MB", Double($0) / 1024) } ?? "unknown"
        }
        say("  after \(options.idleSeconds) s idle:")
        say("    RSS \(megabytes(status["VmRSS"])) (anonymous \(megabytes(status["RssAnon"])), files \(megabytes(status["RssFile"]))), peak \(megabytes(status["VmHWM"]))")
        say("    threads \(threads), CPU while idle \(String(format: "%.2f s", cpuIdle)) (\(String(format: "%.2f", cpuIdle / Double(max(options.idleSeconds, 1)) * 100)) %)")
    }

    /// The `Name: value kB` lines of a /proc file, in KiB by name; empty when it cannot be read.
    static func procFields(_ path: String) -> [String: Int] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var fields: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let value = parts[1].split(whereSeparator: \.isWhitespace).first.flatMap({ Int($0) }) else { continue }
            fields[String(parts[0])] = value
        }
        return fields
    }
}
