import Agent
import Client
import Foundation
import Resources

/// `steady-bench converge --agents N [--processes P]`: N agents over the real protocol against a real controller
/// process, split across P worker processes (each under the open-file limit). Prints the time from an `apply`
/// that changes every runner's slice until every agent holds it, the time until the controller has recorded
/// every Runner as `Synced=True` with the new slice, and the controller's RSS.
enum ConvergenceBenchmark {
    struct Options {
        var agents = 100
        /// Worker processes; 0 chooses one per 2,500 agents.
        var processes = 0
        /// `MALLOC_ARENA_MAX` for the controller process, when set.
        var mallocArenaMax: Int?
    }

    static func run(_ options: Options, binaries: URL) async {
        let count = options.agents
        let processes = options.processes > 0 ? options.processes : max(1, (count + 2499) / 2500)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steady-converge-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var controllerEnvironment: [String: String] = [:]
        if let arenas = options.mallocArenaMax { controllerEnvironment["MALLOC_ARENA_MAX"] = String(arenas) }
        let (controller, kubeconfig) = startController(in: directory, logLevel: "error", environment: controllerEnvironment)
        defer { stopController(controller) }
        let environment = ["STEADY_KUBECONFIG": kubeconfig]
        guard let cluster = try? Kubeconfig.load(from: URL(fileURLWithPath: kubeconfig)).currentCluster else {
            fail("cannot read \(kubeconfig)")
        }
        let token = output(binaries.appendingPathComponent("steady").path, ["token", "create", "--ttl", "1h"], environment: environment)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard (try? AgentJoinToken(parsing: token)) != nil else { fail("cannot create a join token") }
        let arenas = options.mallocArenaMax.map { ", MALLOC_ARENA_MAX=\($0)" } ?? ""
        say("converge benchmark: \(count) agents in \(processes) worker process(es), controller pid \(controller.processIdentifier)\(arenas)")
        try? await Task.sleep(for: .seconds(1))
        let baseline = rssKilobytes(controller.processIdentifier)

        // Nothing below waits forever: a stuck run ends the benchmark.
        let watchdog = Thread {
            Thread.sleep(forTimeInterval: 1800)
            fail("the benchmark did not finish within 30 minutes")
        }
        watchdog.start()
        let clock = ContinuousClock()
        let start = clock.now
        let workers = Worker.start(
            agents: count, processes: processes, binaries: binaries, controller: cluster.server, token: token)
        defer { for worker in workers { worker.stop() } }
        for worker in workers {
            guard await worker.next() == "ready" else { fail("agents did not connect") }
        }
        say("  \(count) agents connected in \(clock.now - start)")
        try? await Task.sleep(for: .seconds(2))
        let connected = rssKilobytes(controller.processIdentifier)
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(controller.processIdentifier)/fd").count) ?? 0
        say("  controller open descriptors with \(count) agents connected: \(descriptors)")

        guard let client = try? APIClient(configuration: .init(server: cluster.server, caPEM: cluster.caPEM, token: cluster.token))
        else { fail("cannot make an API client") }
        guard let listed = try? await client.list(Kinds.runner) else { fail("cannot list runners") }
        async let syncedWatch = waitUntilSynced(client: client, runners: count, from: listed.resourceVersion)

        let manifestFile = directory.appendingPathComponent("bench.yaml")
        try? benchManifest.write(to: manifestFile, atomically: true, encoding: .utf8)
        let cpuBefore = (cpuSeconds(controller.processIdentifier), workers.map { cpuSeconds($0.pid) }.reduce(0, +))
        for worker in workers { worker.send("go") }
        let applyStart = monotonicNanoseconds()
        let applied = runTimed(binaries.appendingPathComponent("apply").path, ["-f", manifestFile.path], environment: environment)
        if applied.status != 0 { fail("apply failed with status \(applied.status)") }
        var held: UInt64 = 0
        for worker in workers {
            guard let line = await worker.next(), line.hasPrefix("held "),
                let instant = UInt64(line.dropFirst(5))
            else { fail("agents did not converge") }
            held = max(held, instant)
        }
        let synced = await syncedWatch
        let cpuAfter = (cpuSeconds(controller.processIdentifier), workers.map { cpuSeconds($0.pid) }.reduce(0, +))
        let converged = rssKilobytes(controller.processIdentifier)
        // Each Runner status write is a store revision: how many the convergence cost, the apply's own included.
        let writes = (try? await client.list(Kinds.runner)).flatMap { after in
            Int64(after.resourceVersion).flatMap { end in Int64(listed.resourceVersion).map { end - $0 } }
        }
        try? await client.shutdown()

        func seconds(_ instant: UInt64) -> String { String(format: "%.2f s", Double(instant &- applyStart) / 1e9) }
        say(String(format: "  apply took %.2f s", applied.seconds))
        say("  every agent held the new slice \(seconds(held)) after apply started")
        if let synced {
            say("  the controller recorded every Runner Synced=True \(seconds(synced)) after apply started")
        } else {
            say("  the controller did not record every Runner Synced=True within 600 s")
        }
        if let writes { say("  store writes from the apply until then: \(writes)") }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        say(
            String(
                format: "  CPU used meanwhile: controller %.2f s, agent workers %.2f s (%d cores)",
                cpuAfter.0 - cpuBefore.0, cpuAfter.1 - cpuBefore.1, cores))
        let perRunner = count > 0 ? Double(connected - baseline) / Double(count) : 0
        say(
            String(
                format: "  controller RSS: %.1f MB before agents, %.1f MB with %d connected (%.1f KB/runner), %.1f MB after convergence",
                Double(baseline) / 1024, Double(connected) / 1024, count, perRunner, Double(converged) / 1024))
    }

    /// A slice of three objects for every runner labelled `role: bench`: a route, its action and its template.
    static let benchManifest = """
        apiVersion: steady.dev/v1
        kind: Action
        metadata: {name: bench-action}
        spec: {type: stdout}
        ---
        apiVersion: steady.dev/v1
        kind: Template
        metadata: {name: bench-template}
        spec: {type: raw-json}
        ---
        apiVersion: steady.dev/v1
        kind: Route
        metadata: {name: bench-route}
        spec: {input: 'input.x == 1', actions: [bench-action], template: bench-template}
        ---
        apiVersion: steady.dev/v1
        kind: Assignment
        metadata: {name: bench}
        spec:
          runnerSelector: {matchLabels: {role: bench}}
          routes: [bench-route]
          actions: [bench-action]
        """

    /// Watches Runners until every one says `Synced=True` with `bench-action` assigned; returns that instant on
    /// the monotonic clock, or nil after 600 s.
    static func waitUntilSynced(client: APIClient, runners: Int, from resourceVersion: String) async -> UInt64? {
        var synced: Set<String> = []
        var version = resourceVersion
        let deadline = monotonicNanoseconds() + 600_000_000_000
        while monotonicNanoseconds() < deadline {
            do {
                for try await event in client.watch(Kinds.runner, resourceVersion: version, timeoutSeconds: 600) {
                    let object = event.object
                    if let next = object["metadata"]?["resourceVersion"]?.stringValue { version = next }
                    guard let name = object["metadata"]?["name"]?.stringValue else { continue }
                    let status = object["status"]
                    let isSynced =
                        status?["conditions"]?.arrayValue?.contains { $0["type"] == "Synced" && $0["status"] == "True" }
                        ?? false
                    let holdsAction = status?["assigned"]?["actions"]?.arrayValue?.contains(.string("bench-action")) ?? false
                    if isSynced && holdsAction { synced.insert(name) } else { synced.remove(name) }
                    if synced.count >= runners { return monotonicNanoseconds() }
                }
            } catch {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        return nil
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

    /// User and system CPU seconds a process has used, from /proc (Linux); 0 when unknown.
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after the command name: state is the 3rd field of the line, utime the 14th and stime the 15th.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// VmRSS of a process in KiB, from /proc (Linux); 0 when unknown.
    static func rssKilobytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.dropFirst("VmRSS:".count).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") ?? 0
    }
}

/// A `converge-worker` child process, spoken to over its standard input and output.
final class Worker: @unchecked Sendable {
    /// Starts `processes` workers sharing `agents` simulated agents between them.
    static func start(
        agents count: Int, processes: Int, binaries: URL, controller: String, token: String,
        extraArguments: [String] = []
    ) -> [Worker] {
        (0..<processes).map { index in
            let first = count * index / processes
            let share = count * (index + 1) / processes - first
            return Worker(
                program: binaries.appendingPathComponent("steady-bench"),
                arguments: [
                    "converge-worker", "--controller", controller, "--token", token, "--first", String(first),
                    "--count", String(share),
                ] + extraArguments)
        }
    }

    // Unchecked: the process and pipes are set once in init, and only the benchmark's main task reads lines.
    private let process = Process()
    var pid: Int32 { process.processIdentifier }
    private let input = Pipe()
    private var iterator: AsyncStream<String>.Iterator

    init(program: URL, arguments: [String]) {
        process.executableURL = program
        process.arguments = arguments
        process.standardInput = input
        let output = Pipe()
        process.standardOutput = output
        let (lines, continuation) = AsyncStream<String>.makeStream()
        iterator = lines.makeAsyncIterator()
        do { try process.run() } catch { fail("cannot start a worker: \(error)") }
        let reader = Thread {
            var pending = Data()
            while true {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    continuation.yield(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...newline)
                }
            }
            continuation.finish()
        }
        reader.start()
    }

    /// The worker's next line, or nil when it exited. Called from one task at a time.
    func next() async -> String? {
        await iterator.next()
    }

    func send(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
