import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import Synchronization

/// `steady-bench events [--routes 100] [--events 100000] [--rate 5000] [--where controller|agent|both]
/// [--action http|file|both]`: events posted to the events port of a real controller (or of a real agent, with the
/// route and action assigned to it), each matching one of N routes, delivered by one action to a sink in this process
/// (http) or to a file (file).
///
/// Printed for each place and action: intake throughput (202 answers per second, posting as fast as 64 callers can),
/// delivered throughput (until the last delivery), p50/p99 latency from posting to delivery (http; the file action
/// gives throughput only) under full load and at a fixed rate, and the process's RSS before, during and after.
enum EventsBenchmark {
    struct Options {
        var routes: Int
        var events: Int
        var rate: Int
        var places: [String]
        var actions: [String]
    }

    /// Post times by sequence number, in nanoseconds of the continuous clock since the origin.
    final class Times: Sendable {
        let values = Mutex<[Int: UInt64]>([:])
    }

    /// The next sequence number the posting tasks take.
    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Receive times by sequence number, in nanoseconds of the continuous clock since `origin`.
    final class Sink: Sendable {
        let received = Mutex<[Int: UInt64]>([:])
        let origin: ContinuousClock.Instant

        init(origin: ContinuousClock.Instant) { self.origin = origin }

        var count: Int { received.withLock { $0.count } }

        func record(_ body: ByteBuffer) {
            let now = (ContinuousClock.now - origin).nanoseconds
            // {"route":"rK","seq":N}: the number after "seq":.
            let text = String(buffer: body)
            guard let range = text.range(of: "\"seq\":") else { return }
            let digits = text[range.upperBound...].prefix { $0.isNumber || $0 == "-" }
            if let seq = Int(digits) { received.withLock { $0[seq] = $0[seq] ?? now } }
        }
    }

    static func run(_ options: Options, binaries: URL) async {
        for place in options.places {
            for action in options.actions {
                await measure(place: place, action: action, options: options, binaries: binaries)
            }
        }
    }

    static func measure(place: String, action: String, options: Options, binaries: URL) async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steady-events-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let origin = ContinuousClock.now
        let sink = Sink(origin: origin)
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            var request = request
            sink.record(try await request.collectBody(upTo: 1 << 20))
            return .ok
        }
        let bound = AsyncStream<Int>.makeStream()
        // The sink has event loops of its own, so the posting client never delays what it measures.
        let sinkLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in bound.continuation.yield(channel.localAddress?.port ?? 0) },
            eventLoopGroupProvider: .shared(sinkLoops), logger: .init(label: "sink"))
        let sinkTask = Task { try await app.runService() }
        defer { sinkTask.cancel() }
        var ports = bound.stream.makeAsyncIterator()
        let sinkPort = await ports.next() ?? 0

        let eventsPort = freePort()
        let onController = place == "controller"
        let (controller, kubeconfig) = startController(
            in: directory.appendingPathComponent("controller"), logLevel: "error",
            extraArguments: onController
                ? ["--events-listen", "127.0.0.1:\(eventsPort)", "--events-max-queued", "20000"] : [])
        defer { stopController(controller) }
        let file = directory.appendingPathComponent("events.ndjson").path
        var manifest =
            action == "http"
            ? "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: deliver}\nspec: {type: http, http: {url: 'http://127.0.0.1:\(sinkPort)/hook'}}\n---\n"
            : "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: deliver}\nspec: {type: file, file: {path: '\(file)'}}\n---\n"
        for route in 0..<options.routes {
            manifest += "apiVersion: steady.dev/v1\nkind: Route\nmetadata: {name: r\(route)}\nspec: {input: 'input.route == \"r\(route)\"', actions: [deliver]}\n---\n"
        }
        var agent: Process?
        if !onController {
            manifest += "apiVersion: steady.dev/v1\nkind: Assignment\nmetadata: {name: bench}\nspec: {runners: [bench-1], routes: [\(( 0..<options.routes).map { "r\($0)" }.joined(separator: ", "))], actions: [deliver]}\n---\n"
        }
        let manifestFile = directory.appendingPathComponent("events.yaml")
        try? manifest.write(to: manifestFile, atomically: true, encoding: .utf8)
        let applied = runTimed(
            binaries.appendingPathComponent("apply").path, ["-f", manifestFile.path],
            environment: ["STEADY_KUBECONFIG": kubeconfig])
        if applied.status != 0 { fail("apply failed") }
        if !onController {
            let token = ConvergenceBenchmark.output(
                binaries.appendingPathComponent("steady").path, ["token", "create", "--ttl", "1h"],
                environment: ["STEADY_KUBECONFIG": kubeconfig]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
            let server = (try? String(contentsOfFile: kubeconfig, encoding: .utf8))?.split(separator: "\n")
                .first { $0.contains("server:") }?.split(separator: " ").last.map(String.init) ?? ""
            let process = Process()
            process.executableURL = binaries.appendingPathComponent("steady")
            process.arguments = [
                "agent", "--controller", server, "--join-token", token, "--name", "bench-1", "--state-dir",
                directory.appendingPathComponent("agent").path, "--events-listen", "127.0.0.1:\(eventsPort)",
                "--log-level", "error",
            ]
            do { try process.run() } catch { fail("cannot start the agent: \(error)") }
            agent = process
        }
        defer {
            agent?.terminate()
            agent?.waitUntilExit()
        }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        // Warm up until a probe event is delivered: the route table (and, on an agent, the slice) is in place.
        var delivered = { action == "http" ? sink.count : lineCount(file) }
        let warmupDeadline = ContinuousClock.now + .seconds(60)
        while delivered() == 0 {
            if ContinuousClock.now > warmupDeadline {
                try? await client.shutdown()
                fail("no event was delivered within 60 s")
            }
            _ = await post(client, port: eventsPort, seq: -1, routes: options.routes)
            try? await Task.sleep(for: .milliseconds(200))
        }
        try? await Task.sleep(for: .milliseconds(500))
        sink.received.withLock { $0.removeAll() }
        let baseline = action == "http" ? 0 : lineCount(file)
        delivered = { action == "http" ? sink.count : lineCount(file) - baseline }
        let measured = agent?.processIdentifier ?? controller.processIdentifier
        let rssBefore = ConvergenceBenchmark.rssKilobytes(measured)
        say("events benchmark: \(options.events) events, \(options.routes) routes, \(action) action, on the \(place) (pid \(measured))")

        // Full load: 64 callers post as fast as the answers come.
        let sent = Times()
        let start = ContinuousClock.now
        let cpuBefore = ConvergenceBenchmark.cpuSeconds(measured)
        var peakRSS = rssBefore
        let next = Counter()
        let failed = Counter()
        let sampled = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    while true {
                        let seq = next.value.add(1, ordering: .relaxed).oldValue
                        if seq >= options.events { return 0 }
                        let postedAt = (ContinuousClock.now - origin).nanoseconds
                        await postUntilTaken(
                            client, port: eventsPort, seq: seq, routes: options.routes, postedAt: postedAt, sent: sent,
                            failed: failed)
                    }
                }
            }
            group.addTask {
                var peak = 0
                while sent.values.withLock({ $0.count }) + failed.value.load(ordering: .relaxed) < options.events {
                    peak = max(peak, ConvergenceBenchmark.rssKilobytes(measured))
                    try? await Task.sleep(for: .milliseconds(500))
                }
                return peak
            }
            return await group.reduce(0, max)
        }
        peakRSS = max(peakRSS, sampled)
        let intakeSeconds = seconds(ContinuousClock.now - start)
        let acknowledged = sent.values.withLock { $0.count }
        while delivered() < acknowledged && ContinuousClock.now - start < .seconds(600) {
            peakRSS = max(peakRSS, ConvergenceBenchmark.rssKilobytes(measured))
            try? await Task.sleep(for: .milliseconds(20))
        }
        let deliveredSeconds = seconds(ContinuousClock.now - start)
        // CPU per event holds when other processes share the cores; throughput does not.
        let cpuPerEvent = (ConvergenceBenchmark.cpuSeconds(measured) - cpuBefore) / Double(max(delivered(), 1))
        say(
            String(
                format: "  full load: intake %.0f events/s (%d acknowledged, %d posts failed), "
                    + "delivered %d in %.2f s = %.0f events/s",
                Double(options.events) / intakeSeconds, acknowledged, options.events - acknowledged, delivered(),
                deliveredSeconds, Double(delivered()) / deliveredSeconds))
        say(
            "  \(place) CPU: "
                + String(
                    format: "%.0f µs per event delivered, so %.0f events/s per core", cpuPerEvent * 1e6,
                    1 / max(cpuPerEvent, 1e-9)))
        if action == "http" { say("  full load latency: " + latencies(sent: sent, sink: sink)) }

        // A fixed rate, for latency when the pipeline keeps up. 64 callers share the schedule: each takes the next
        // event and posts it at its time, so the posts in flight stay bounded (thousands of requests queued in the
        // client's pool stall its event loops, which the sink shares) and a pipeline that falls behind shows as
        // latency and as a lower achieved rate, not as a pile of timed-out requests.
        if action == "http" {
            let count = min(options.events, options.rate * 10)
            sink.received.withLock { $0.removeAll() }
            sent.values.withLock { $0.removeAll() }
            let interval = Duration.nanoseconds(1_000_000_000 / max(options.rate, 1))
            let paced = ContinuousClock.now
            let scheduled = Counter()
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<64 {
                    group.addTask {
                        while true {
                            let index = scheduled.value.add(1, ordering: .relaxed).oldValue
                            if index >= count { return }
                            let due = paced + interval * index
                            if ContinuousClock.now < due { try? await Task.sleep(until: due) }
                            let seq = options.events + index
                            let postedAt = (ContinuousClock.now - origin).nanoseconds
                            await postUntilTaken(
                                client, port: eventsPort, seq: seq, routes: options.routes, postedAt: postedAt,
                                sent: sent, failed: failed)
                        }
                    }
                }
            }
            let achieved = Double(count) / seconds(ContinuousClock.now - paced)
            let acknowledgedAtRate = sent.values.withLock { $0.count }
            while sink.count < acknowledgedAtRate && ContinuousClock.now - paced < .seconds(120) {
                try? await Task.sleep(for: .milliseconds(20))
            }
            say(
                String(
                    format: "  at %d events/s (%d events, %d acknowledged, posted at %.0f/s): ", options.rate, count,
                    acknowledgedAtRate, achieved)
                    + latencies(sent: sent, sink: sink))
        }
        try? await client.shutdown()
        try? await Task.sleep(for: .seconds(2))
        say(
            String(
                format: "  RSS: %.1f MB before, %.1f MB peak, %.1f MB after",
                Double(rssBefore) / 1024, Double(peakRSS) / 1024,
                Double(ConvergenceBenchmark.rssKilobytes(measured)) / 1024))
    }

    static func latencies(sent: Times, sink: Sink) -> String {
        let posted = sent.values.withLock { $0 }
        let received = sink.received.withLock { $0 }
        var values = received.compactMap { seq, at in posted[seq].map { Double(Int64(at) - Int64($0)) / 1e6 } }
        values.sort()
        guard !values.isEmpty else { return "no deliveries" }
        func percentile(_ p: Double) -> Double { values[min(values.count - 1, Int(Double(values.count) * p))] }
        return String(
            format: "p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d delivered)", percentile(0.5), percentile(0.99),
            values.last ?? 0, values.count)
    }

    /// Posts event `seq`, again after each 429 (its latency counts from the first try), and records it as sent
    /// once acknowledged (202): only those must be delivered; any other answer is counted in `failed`.
    static func postUntilTaken(
        _ client: HTTPClient, port: Int, seq: Int, routes: Int, postedAt: UInt64, sent: Times, failed: Counter
    ) async {
        var status = 429
        while status == 429 {
            status = await post(client, port: port, seq: seq, routes: routes)
            if status == 429 { try? await Task.sleep(for: .milliseconds(5)) }
        }
        if status == 202 {
            sent.values.withLock { $0[seq] = postedAt }
        } else {
            failed.value.add(1, ordering: .relaxed)
        }
    }

    static func post(_ client: HTTPClient, port: Int, seq: Int, routes: Int) async -> Int {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"route":"r\#(abs(seq) % max(routes, 1))","seq":\#(seq)}"#))
        guard let response = try? await client.execute(request, timeout: .seconds(30)) else { return 0 }
        _ = try? await response.body.collect(upTo: 4096)
        return Int(response.status.code)
    }

    static func lineCount(_ path: String) -> Int {
        guard let data = FileManager.default.contents(atPath: path) else { return 0 }
        return data.reduce(0) { $1 == 0x0A ? $0 + 1 : $0 }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func freePort() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension Duration {
    /// The whole duration in nanoseconds (non-negative durations below 584 years).
    var nanoseconds: UInt64 {
        UInt64(components.seconds) * 1_000_000_000 + UInt64(components.attoseconds / 1_000_000_000)
    }
}
