import AsyncHTTPClient
import Client
import Foundation
import NIOCore
import Resources
import Synchronization

/// `steady-bench soak [--minutes 30] [--agents 1000] [--sample 10]`: everything at once, for a long time.
///
/// One controller; `--agents` simulated agents (the real `Agent` code in worker processes, each running
/// `/bin/echo ok` as its run command); an apply storm that changes 50 objects every second; five watchers (four
/// API watches and `kubectl get routes -w` when kubectl is installed, otherwise a fifth API watch); 100 events a
/// second into the controller's event intake, delivered to a file; and a RemoteRun on every runner every 30 s.
/// Every `--sample` seconds it prints the controller's RSS and open descriptors, the workers' RSS, and the counts
/// of work done and errors; at the end, how RSS and descriptors moved. Both must stay flat, with no errors.
enum SoakBenchmark {
    struct Options {
        var minutes = 30
        var agents = 1000
        var sampleSeconds = 10
    }

    /// Counts shared by the load tasks and the sampler.
    final class Counts: Sendable {
        private struct State {
            var values: [String: Int] = [:]
            var firstErrors: [String: String] = [:]
        }
        private let state = Mutex(State())

        func add(_ name: String, _ amount: Int = 1) {
            state.withLock { $0.values[name, default: 0] += amount }
        }

        /// Counts an error under `name`, keeping the first of each name to print at the end.
        func fail(_ name: String, _ error: any Error) {
            state.withLock { state in
                state.values[name, default: 0] += 1
                if state.firstErrors[name] == nil { state.firstErrors[name] = "\(error)" }
            }
        }

        var snapshot: [String: Int] { state.withLock { $0.values } }
        var errors: [String: String] { state.withLock { $0.firstErrors } }
    }

    struct UnexpectedStatus: Error, CustomStringConvertible {
        let code: UInt
        var description: String { "HTTP \(code) from the event intake" }
    }

    static func run(_ options: Options, binaries: URL) async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steady-soak-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let eventsPort = EventsBenchmark.freePort()
        let (controller, kubeconfig) = startController(
            in: directory.appendingPathComponent("controller"), logLevel: "error",
            extraArguments: ["--events-listen", "127.0.0.1:\(eventsPort)"])
        defer { stopController(controller) }
        guard let cluster = try? Kubeconfig.load(from: URL(fileURLWithPath: kubeconfig)).currentCluster,
            let client = try? APIClient(
                configuration: .init(server: cluster.server, caPEM: cluster.caPEM, token: cluster.token))
        else { fail("cannot read \(kubeconfig)") }
        let eventsFile = directory.appendingPathComponent("events.ndjson").path
        let setup: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "Action", "metadata": ["name": "soak-file"],
            "spec": ["type": "file", "file": ["path": .string(eventsFile)]],
        ]
        let route: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "Route", "metadata": ["name": "soak-events"],
            "spec": ["input": "has(input.seq)", "actions": ["soak-file"]],
        ]
        guard (try? await client.create(Kinds.action, setup)) != nil,
            (try? await client.create(Kinds.route, route)) != nil
        else { fail("cannot create the soak's route and action") }

        let token = ConvergenceBenchmark.output(
            binaries.appendingPathComponent("steady").path, ["token", "create", "--ttl", "24h"],
            environment: ["STEADY_KUBECONFIG": kubeconfig]
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        let processes = max(1, (options.agents + 499) / 500)
        say(
            "soak: \(options.minutes) min, \(options.agents) agents in \(processes) process(es), controller pid "
                + "\(controller.processIdentifier)")
        let workers = Worker.start(
            agents: options.agents, processes: processes, binaries: binaries, controller: cluster.server,
            token: token,
            extraArguments: [
                "--run-command", "/bin/echo ok", "--state-base", directory.appendingPathComponent("agents").path,
            ])
        defer { for worker in workers { worker.stop() } }
        for worker in workers {
            guard await worker.next() == "ready" else { fail("agents did not connect") }
        }

        let counts = Counts()
        let kubectl = startKubectlWatch(kubeconfig: kubeconfig)
        defer {
            kubectl?.terminate()
            kubectl?.waitUntilExit()
        }
        let end = ContinuousClock.now + .seconds(options.minutes * 60)
        let watchedKinds = [Kinds.route, Kinds.runner, Kinds.remoteRun, Kinds.action] + (kubectl == nil ? [Kinds.template] : [])
        await withTaskGroup(of: Void.self) { group in
            for kind in watchedKinds {
                group.addTask { await watch(kind, client: client, counts: counts, until: end) }
            }
            group.addTask { await applyStorm(client: client, counts: counts, until: end) }
            group.addTask { await postEvents(port: eventsPort, counts: counts, until: end) }
            group.addTask { await remoteRuns(client: client, counts: counts, until: end) }
            await sample(
                controller: controller.processIdentifier, workers: workers.map(\.pid), eventsFile: eventsFile,
                counts: counts, every: options.sampleSeconds, until: end, client: client)
            group.cancelAll()
        }
        try? await client.shutdown()
    }

    /// `kubectl get routes -w`, when kubectl is installed, as the fifth watcher.
    static func startKubectlWatch(kubeconfig: String) -> Process? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        guard let kubectl = paths.map({ "\($0)/kubectl" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: kubectl)
        process.arguments = ["--kubeconfig", kubeconfig, "get", "routes", "-w"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        return process
    }

    /// One watcher: counts events, and watches again (from the last version seen) when the server ends a watch.
    static func watch(_ kind: KindInfo, client: APIClient, counts: Counts, until end: ContinuousClock.Instant) async {
        var version = ""
        var failures = 0
        while ContinuousClock.now < end && !Task.isCancelled {
            do {
                for try await event in client.watch(kind, resourceVersion: version, timeoutSeconds: 60) {
                    version = event.object["metadata"]?["resourceVersion"]?.stringValue ?? version
                    counts.add("watch events")
                }
                failures = 0
            } catch {
                if Task.isCancelled { return }
                counts.fail("watch errors", error)
                version = ""
                failures += 1
                try? await Task.sleep(for: Backoff.watchRestart.jitteredDelay(attempt: failures))
            }
        }
    }

    /// 50 Routes and Templates, each changed once a second by server-side apply.
    static func applyStorm(client: APIClient, counts: Counts, until end: ContinuousClock.Instant) async {
        var round = 0
        while ContinuousClock.now < end && !Task.isCancelled {
            let tick = ContinuousClock.now
            for index in 0..<25 {
                let template: JSONValue = [
                    "apiVersion": "steady.dev/v1", "kind": "Template", "metadata": ["name": .string("soak-\(index)")],
                    "spec": ["type": "mustache", "body": .string("round \(round): {{input.title}}")],
                ]
                let route: JSONValue = [
                    "apiVersion": "steady.dev/v1", "kind": "Route", "metadata": ["name": .string("soak-\(index)")],
                    "spec": ["input": .string("input.round == \(round)"), "actions": ["soak-file"]],
                ]
                for (kind, object) in [(Kinds.template, template), (Kinds.route, route)] {
                    do {
                        _ = try await client.apply(kind, object, fieldManager: "soak", force: true)
                        counts.add("applies")
                    } catch {
                        counts.fail("apply errors", error)
                    }
                }
            }
            round += 1
            try? await Task.sleep(until: tick + .seconds(1))
        }
    }

    /// 100 events a second into the controller's Postee-compatible intake.
    static func postEvents(port: Int, counts: Counts, until end: ContinuousClock.Instant) async {
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        var seq = 0
        while ContinuousClock.now < end && !Task.isCancelled {
            let tick = ContinuousClock.now
            for _ in 0..<100 {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"seq":\#(seq),"title":"soak"}"#))
                seq += 1
                do {
                    let response = try await http.execute(request, timeout: .seconds(30))
                    _ = try await response.body.collect(upTo: 4096)
                    if response.status.code == 202 {
                        counts.add("events accepted")
                    } else {
                        counts.fail("event errors", UnexpectedStatus(code: response.status.code))
                    }
                } catch {
                    counts.fail("event errors", error)
                }
            }
            try? await Task.sleep(until: tick + .seconds(1))
        }
        try? await http.shutdown()
    }

    /// A RemoteRun on every runner every 30 s, deleted by its TTL 30 s after it finishes.
    static func remoteRuns(client: APIClient, counts: Counts, until end: ContinuousClock.Instant) async {
        var index = 0
        while ContinuousClock.now < end && !Task.isCancelled {
            let tick = ContinuousClock.now
            let run: JSONValue = [
                "apiVersion": "steady.dev/v1", "kind": "RemoteRun", "metadata": ["name": .string("soak-\(index)")],
                "spec": ["target": ["all": true], "ttlSecondsAfterFinished": 30],
            ]
            index += 1
            do {
                _ = try await client.create(Kinds.remoteRun, run)
                counts.add("remote runs")
            } catch {
                counts.fail("remote run errors", error)
            }
            try? await Task.sleep(until: tick + .seconds(30))
        }
    }

    /// Prints a line every `seconds`, then how memory and descriptors moved from the first sample to the last.
    static func sample(
        controller: Int32, workers: [Int32], eventsFile: String, counts: Counts, every seconds: Int,
        until end: ContinuousClock.Instant, client: APIClient
    ) async {
        let start = ContinuousClock.now
        var samples: [(rss: Int, descriptors: Int)] = []
        while ContinuousClock.now < end {
            try? await Task.sleep(for: .seconds(seconds))
            let rss = ConvergenceBenchmark.rssKilobytes(controller)
            let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(controller)/fd").count) ?? 0
            let workerRSS = workers.map(ConvergenceBenchmark.rssKilobytes).reduce(0, +)
            // How much of the controller's memory is SQLite's page caches, which fill up to their size and stay.
            let sqlite = await sqliteMegabytes(client)
            samples.append((rss, descriptors))
            let elapsed = Int(EventsBenchmark.seconds(ContinuousClock.now - start))
            let done = counts.snapshot.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            say(
                String(
                    format: "  %5d s: controller RSS %.1f MB (SQLite %.1f MB), %d descriptors, workers RSS %.1f MB; ",
                    elapsed, Double(rss) / 1024, sqlite, descriptors, Double(workerRSS) / 1024)
                    + "\(done), events delivered \(EventsBenchmark.lineCount(eventsFile))")
        }
        guard let first = samples.first, let last = samples.last else { return }
        let peak = samples.map(\.rss).max() ?? 0
        let errors = counts.snapshot.filter { $0.key.hasSuffix("errors") }.values.reduce(0, +)
        say(
            String(
                format: "  controller RSS %.1f → %.1f MB (peak %.1f MB), descriptors %d → %d (%d–%d); %d errors",
                Double(first.rss) / 1024, Double(last.rss) / 1024, Double(peak) / 1024, first.descriptors,
                last.descriptors, samples.map(\.descriptors).min() ?? 0, samples.map(\.descriptors).max() ?? 0,
                errors))
        for (name, error) in counts.errors.sorted(by: { $0.key < $1.key }) {
            say("  first of the \(name): \(error)")
        }
    }

    /// `steady_sqlite_memory_bytes` from the controller's `/metrics`, in MB; 0 when it cannot be read.
    static func sqliteMegabytes(_ client: APIClient) async -> Double {
        guard let text = try? await client.text(path: "/metrics") else { return 0 }
        let line = text.split(separator: "\n").first { $0.hasPrefix("steady_sqlite_memory_bytes ") }
        return (line?.split(separator: " ").last.flatMap { Double($0) } ?? 0) / 1_048_576
    }
}
