import Foundation

// steady-bench: figures for BENCHMARKS.md. Each benchmark starts real processes on loopback and prints
// what it measured; nothing here asserts a time.
//
//   swift build -c release && .build/release/steady-bench apply [--objects 10000]
//   .build/release/steady-bench converge [--agents 1000] [--processes P] [--malloc-arena-max N]
//   .build/release/steady-bench reconcile [--objects 10000] [--workers 4]
//   .build/release/steady-bench idle [--seconds 10]
//   .build/release/steady-bench remoterun [--agents 20] [--processes P]
//
// `remoterun` times a RemoteRun of `/bin/echo ok` on every agent; `--processes 20` with `--agents 20` gives each
// agent a process of its own, as on real hosts (by default agents share one process per 2,500).
//   .build/release/steady-bench gitops [--objects 10000] [--idle 30]
//   .build/release/steady-bench events [--routes 100] [--events 100000] [--rate 5000] [--where controller|agent]
//       [--action http|file] [--paced-seconds 10]
//   (EVENTS_LATENCY_DUMP=FILE writes each delivered event's post time and latency in ns, one per line, to find
//   when the slow ones were posted.)
//
// `apply` starts a controller, applies N objects with `apply -f` and then the same N (renamed) with
// `kubectl apply -f` (when kubectl is installed), and prints objects/s for each and the controller's peak RSS.
// `converge` runs N agents in P child processes (`converge-worker`, one share each) against one controller.
// `reconcile` brings N routes and N actions to Ready in one process. `idle` measures the CPU an idle controller
// and one connected agent use when nothing changes.
//
//   .build-release/release/steady-bench agent-memory [--idle 30] [--agent "PATH [SUBCOMMAND]"]
//
//   .build-release/release/steady-bench soak [--minutes 30] [--agents 1000] [--sample 10]
//
// `soak` runs agents, an apply storm, five watchers, events and remote runs together and prints the controller's
// memory and descriptors over time (RELIABILITY.md).
//
// `agent-memory` runs one real agent (`steady-agent`) holding a three-object slice and prints its RSS, threads
// and idle CPU.

let arguments = CommandLine.arguments.dropFirst()
let benchmark = arguments.first ?? "apply"
/// The value after `flag`, when given.
func option(_ flag: String) -> String? {
    guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.endIndex else { return nil }
    return arguments[index + 1]
}

func requiredOption(_ flag: String) -> String {
    guard let value = option(flag) else { fail("\(flag) is needed") }
    return value
}

func intOption(_ flag: String) -> Int? {
    guard let text = option(flag) else { return nil }
    guard let value = Int(text) else { fail("\(flag) needs a number") }
    return value
}

let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("steady-bench: \(message)\n".utf8))
    exit(2)
}

/// Runs a command to completion, returning its exit status and the seconds it took.
func runTimed(_ program: String, _ arguments: [String], environment: [String: String] = [:]) -> (status: Int32, seconds: Double) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = FileHandle.nullDevice
    let clock = ContinuousClock()
    let start = clock.now
    do { try process.run() } catch { fail("cannot run \(program): \(error)") }
    process.waitUntilExit()
    let elapsed = clock.now - start
    return (process.terminationStatus, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// Peak resident set size of a process, from /proc (Linux).
func peakRSS(pid: Int32) -> String {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
    else { return "unknown" }
    return line.dropFirst("VmHWM:".count).trimmingCharacters(in: .whitespaces)
}

func manifest(prefix: String, count: Int) -> String {
    var text = ""
    text.reserveCapacity(count * 200)
    for index in 0..<count {
        switch index % 4 {
        case 0:
            text += "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: \(prefix)-a\(index)}\nspec: {type: stdout}\n---\n"
        case 1:
            text += "apiVersion: steady.dev/v1\nkind: Template\nmetadata: {name: \(prefix)-t\(index)}\nspec: {type: raw-json}\n---\n"
        case 2:
            text += "apiVersion: steady.dev/v1\nkind: Route\nmetadata: {name: \(prefix)-r\(index)}\nspec:\n  input: 'input.SigMetadata.ID == \"TRC-\(index)\"'\n  actions: [\(prefix)-a\(index - 2)]\n---\n"
        default:
            text += "apiVersion: steady.dev/v1\nkind: Runner\nmetadata: {name: \(prefix)-n\(index), labels: {role: web}}\n---\n"
        }
    }
    return text
}

/// Stops the controller: SIGTERM, then SIGKILL if it has not exited after 10 s (its graceful shutdown waits for
/// open requests, such as a watch whose client has gone, to end).
func stopController(_ controller: Process) {
    controller.terminate()
    let deadline = Date().addingTimeInterval(10)
    while controller.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if controller.isRunning { kill(controller.processIdentifier, SIGKILL) }
    controller.waitUntilExit()
}

/// Writes a line to standard output at once (print's buffer would hold it while stdout is a pipe).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Starts `steady controller` on a free loopback port and waits for its kubeconfig.
func startController(
    in directory: URL, logLevel: String, environment: [String: String] = [:], extraArguments: [String] = []
) -> (process: Process, kubeconfig: String) {
    let controller = Process()
    controller.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    controller.executableURL = binaries.appendingPathComponent("steady")
    // STEADY_BENCH_CONTROLLER_ARGS adds flags to every benchmark's controller, e.g. "--store etcd://127.0.0.1:2379".
    let benchArguments = (ProcessInfo.processInfo.environment["STEADY_BENCH_CONTROLLER_ARGS"] ?? "")
        .split(separator: " ").map(String.init)
    controller.arguments =
        ["controller", "--data-dir", directory.path, "--listen", "127.0.0.1:0", "--log-level", logLevel]
        + extraArguments + benchArguments
    do { try controller.run() } catch { fail("cannot start the controller: \(error)") }
    let kubeconfig = directory.appendingPathComponent("admin.kubeconfig").path
    let deadline = Date().addingTimeInterval(30)
    while !FileManager.default.fileExists(atPath: kubeconfig) {
        if Date() > deadline || !controller.isRunning { fail("the controller did not start") }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return (controller, kubeconfig)
}

func applyBenchmark(objectCount: Int) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steady-bench-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let (controller, kubeconfig) = startController(in: directory, logLevel: "warning")
    defer { stopController(controller) }
    print("apply benchmark: \(objectCount) objects (actions, templates, routes, runners), controller pid \(controller.processIdentifier)")

    let ours = directory.appendingPathComponent("steady-apply.yaml")
    try? manifest(prefix: "s", count: objectCount).write(to: ours, atomically: true, encoding: .utf8)
    let first = runTimed(binaries.appendingPathComponent("apply").path, ["-f", ours.path], environment: ["STEADY_KUBECONFIG": kubeconfig])
    if first.status != 0 { fail("apply failed with status \(first.status)") }
    print(String(format: "  apply -f (create):     %6.2f s  %8.0f objects/s", first.seconds, Double(objectCount) / first.seconds))
    let again = runTimed(binaries.appendingPathComponent("apply").path, ["-f", ours.path], environment: ["STEADY_KUBECONFIG": kubeconfig])
    print(String(format: "  apply -f (unchanged):  %6.2f s  %8.0f objects/s", again.seconds, Double(objectCount) / again.seconds))

    let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
    if let kubectl = paths.map({ "\($0)/kubectl" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
        let theirs = directory.appendingPathComponent("kubectl-apply.yaml")
        try? manifest(prefix: "k", count: objectCount).write(to: theirs, atomically: true, encoding: .utf8)
        let result = runTimed(kubectl, ["--kubeconfig", kubeconfig, "apply", "-f", theirs.path])
        if result.status != 0 { fail("kubectl apply failed with status \(result.status)") }
        print(String(format: "  kubectl apply -f:      %6.2f s  %8.0f objects/s", result.seconds, Double(objectCount) / result.seconds))
        let serverSide = runTimed(kubectl, ["--kubeconfig", kubeconfig, "apply", "--server-side", "-f", theirs.path])
        print(String(format: "  kubectl apply --server-side (unchanged): %6.2f s  %8.0f objects/s", serverSide.seconds, Double(objectCount) / serverSide.seconds))
    } else {
        print("  kubectl: not installed, skipped")
    }
    print("  controller peak RSS: \(peakRSS(pid: controller.processIdentifier))")
}

switch benchmark {
case "apply": applyBenchmark(objectCount: intOption("--objects") ?? 10_000)
case "converge":
    let options = ConvergenceBenchmark.Options(
        agents: intOption("--agents") ?? 100, processes: intOption("--processes") ?? 0,
        mallocArenaMax: intOption("--malloc-arena-max"))
    await ConvergenceBenchmark.run(options, binaries: binaries)
case "reconcile":
    await ReconcileBenchmark.run(count: intOption("--objects") ?? 10_000, workers: intOption("--workers") ?? 4)
case "idle":
    await IdleBenchmark.run(seconds: intOption("--seconds") ?? 10, binaries: binaries)
case "agent-memory":
    await AgentMemoryBenchmark.run(
        AgentMemoryBenchmark.Options(
            idleSeconds: intOption("--idle") ?? 30,
            agentCommand: option("--agent").map { $0.split(separator: " ").map(String.init) } ?? []),
        binaries: binaries)
case "gitops":
    await GitOpsBenchmark.run(objects: intOption("--objects") ?? 10_000, idleSeconds: intOption("--idle") ?? 30, binaries: binaries)
case "events":
    await EventsBenchmark.run(
        EventsBenchmark.Options(
            routes: intOption("--routes") ?? 100, events: intOption("--events") ?? 100_000,
            rate: intOption("--rate") ?? 5_000, pacedSeconds: intOption("--paced-seconds"),
            places: option("--where").map { $0 == "both" ? ["controller", "agent"] : [$0] } ?? ["controller", "agent"],
            actions: option("--action").map { $0 == "both" ? ["http", "file"] : [$0] } ?? ["http", "file"]),
        binaries: binaries)
case "remoterun":
    await RemoteRunBenchmark.run(
        agents: intOption("--agents") ?? 20, processes: intOption("--processes"), binaries: binaries)
case "soak":
    await SoakBenchmark.run(
        SoakBenchmark.Options(
            minutes: intOption("--minutes") ?? 30, agents: intOption("--agents") ?? 1000,
            sampleSeconds: intOption("--sample") ?? 10),
        binaries: binaries)
case "converge-worker":
    var options = AgentSimulator.Options(
        controllerURL: requiredOption("--controller"), joinToken: requiredOption("--token"),
        first: intOption("--first") ?? 0, count: intOption("--count") ?? 0)
    options.runCommand = option("--run-command").map { $0.split(separator: " ").map(String.init) }
    options.stateBase = option("--state-base")
    await AgentSimulator.run(options)
default: fail("unknown benchmark \(benchmark): use apply, converge, reconcile, idle, agent-memory, remoterun or gitops")
}
