import Client
import Foundation
import Resources

/// `steady-bench remoterun [--agents N]`: the time from creating a RemoteRun on every runner to every runner's
/// result recorded in its status, with N simulated agents (the real `Agent` code, in worker processes) that each
/// really spawn `/bin/echo ok` through their run command; and the controller's CPU and memory meanwhile.
enum RemoteRunBenchmark {
    static func run(agents count: Int, processes: Int? = nil, binaries: URL) async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steady-remoterun-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (controller, kubeconfig) = startController(in: directory, logLevel: "error")
        defer { stopController(controller) }
        guard let cluster = try? Kubeconfig.load(from: URL(fileURLWithPath: kubeconfig)).currentCluster else {
            fail("cannot read \(kubeconfig)")
        }
        let token = ConvergenceBenchmark.output(
            binaries.appendingPathComponent("steady").path, ["token", "create", "--ttl", "1h"],
            environment: ["STEADY_KUBECONFIG": kubeconfig]
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        let processes = min(max(1, processes ?? (count + 2499) / 2500), max(1, count))
        say(
            "remoterun benchmark: \(count) agents in \(processes) process(es) running /bin/echo ok, controller pid "
                + "\(controller.processIdentifier)")
        let workers = Worker.start(
            agents: count, processes: processes, binaries: binaries, controller: cluster.server, token: token,
            extraArguments: [
                "--run-command", "/bin/echo ok", "--state-base", directory.appendingPathComponent("agents").path,
            ])
        defer { for worker in workers { worker.stop() } }
        for worker in workers {
            guard await worker.next() == "ready" else { fail("agents did not connect") }
        }
        guard
            let client = try? APIClient(
                configuration: .init(server: cluster.server, caPEM: cluster.caPEM, token: cluster.token))
        else { fail("cannot make an API client") }
        // Every runner exists and is connected before the clock starts.
        try? await Task.sleep(for: .seconds(2))
        let run: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "RemoteRun", "metadata": ["name": "bench"],
            "spec": ["target": ["all": true]],
        ]
        let cpuBefore = ConvergenceBenchmark.cpuSeconds(controller.processIdentifier)
        let agentsCPUBefore = workers.reduce(0) { $0 + ConvergenceBenchmark.cpuSeconds($1.pid) }
        let clock = ContinuousClock()
        let start = clock.now
        guard let created = try? await client.create(Kinds.remoteRun, run) else { fail("cannot create the RemoteRun") }
        let version = created["metadata"]?["resourceVersion"]?.stringValue ?? ""
        var final: JSONValue?
        do {
            for try await event in client.watch(
                Kinds.remoteRun, name: "bench", resourceVersion: version, timeoutSeconds: 600)
            {
                let phase = event.object["status"]?["phase"]?.stringValue ?? ""
                if ["Succeeded", "Failed", "Cancelled"].contains(phase) {
                    final = event.object
                    break
                }
            }
        } catch {
            try? await client.shutdown()
            fail("watching the RemoteRun failed: \(error)")
        }
        let elapsed = clock.now - start
        let cpu = ConvergenceBenchmark.cpuSeconds(controller.processIdentifier) - cpuBefore
        let agentsCPU = workers.reduce(0) { $0 + ConvergenceBenchmark.cpuSeconds($1.pid) } - agentsCPUBefore
        try? await client.shutdown()
        guard let final else { fail("the RemoteRun did not finish within 600 s") }
        let counts = final["status"]?["counts"]
        let results = final["status"]?["results"]?.arrayValue ?? []
        let exitZero = results.count { $0["exitCode"]?.intValue == 0 }
        say(
            "  \(final["status"]?["phase"]?.stringValue ?? "?"): \(counts?["succeeded"]?.intValue ?? 0)/\(count) "
                + "succeeded (\(exitZero) results with exit code 0) \(elapsed) after the RemoteRun was created")
        say(
            String(
                format: "  controller CPU meanwhile %.2f s, RSS %.1f MB; agent processes' CPU %.2f s", cpu,
                Double(ConvergenceBenchmark.rssKilobytes(controller.processIdentifier)) / 1024, agentsCPU))
    }
}
