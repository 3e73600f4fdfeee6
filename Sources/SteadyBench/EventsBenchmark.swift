import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// `steady-bench events [--routes 100] [--events 100000] [--rate 5000] [--where controller|agent|both]
/// [--action http|file|both] [--paced-seconds 10]`: events posted to the events port of a real controller (or of a
/// real agent, with the route and action assigned to it), each matching one of N routes, delivered by one action to an
/// HTTP sink in this process (http) or to a file that this process reads as it grows (file).
///
/// Events are posted by ``EventPoster`` and seen delivered by ``EventSink``, both SwiftNIO on event loops of their own
/// and about as cheap per request as wrk, since they share the machine with what they measure. Printed for each place
/// and action: intake throughput (202 answers per second, posting as fast as 64 connections can), delivered
/// throughput (until the last delivery), p50/p99 latency from posting to delivery (to the line being read back, for
/// the file action) under full load and at a fixed rate, and the process's RSS before, during and after.
enum EventsBenchmark {
    struct Options {
        var routes: Int
        var events: Int
        var rate: Int
        /// How long the fixed-rate phase lasts; nil for 10 s or `events`, whichever is fewer events.
        var pacedSeconds: Int?
        var places: [String]
        var actions: [String]
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
        let sink = EventSink(origin: origin)
        // The sink has an event loop of its own, so the load generator never delays what it measures.
        let sinkLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        guard let sinkPort = try? await sink.serve(on: sinkLoop) else { fail("cannot start the HTTP sink") }

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
        // The load generator has an event loop of its own, as the sink has.
        let posterLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        func post(_ count: Int, from firstSeq: Int, connections: Int, rate: Int? = nil) async -> EventPoster {
            await EventPoster.run(
                .init(
                    port: eventsPort, connections: connections, count: count, firstSeq: firstSeq,
                    routes: options.routes, rate: rate),
                origin: origin, on: posterLoop.next())
        }
        // Warm up until a probe event is delivered: the route table (and, on an agent, the slice) is in place.
        // The file action's lines are read as they are written, for their latency.
        if action == "file" {
            try? Data().write(to: URL(fileURLWithPath: file))
            do { try sink.follow(file) } catch { fail("cannot follow \(file): \(error)") }
        }
        defer { sink.stopFollowing() }
        let delivered = { sink.count }
        let warmupDeadline = ContinuousClock.now + .seconds(60)
        while delivered() == 0 {
            if ContinuousClock.now > warmupDeadline { fail("no event was delivered within 60 s") }
            _ = await post(1, from: -1, connections: 1)
            try? await Task.sleep(for: .milliseconds(200))
        }
        try? await Task.sleep(for: .milliseconds(500))
        sink.received.withLock { $0.removeAll() }
        let measured = agent?.processIdentifier ?? controller.processIdentifier
        let rssBefore = ConvergenceBenchmark.rssKilobytes(measured)
        say("events benchmark: \(options.events) events, \(options.routes) routes, \(action) action, on the \(place) (pid \(measured))")

        // Full load: 64 connections post as fast as the answers come.
        let start = ContinuousClock.now
        let cpuBefore = ConvergenceBenchmark.cpuSeconds(measured)
        // The process's RSS is sampled beside the load, both phases, until the end.
        let (rssAfterFullLoad, peakRSS) = await sampleRSS(of: measured, from: rssBefore) {
            let load = EventPoster.Load(
                port: eventsPort, connections: 64, count: options.events, firstSeq: 0, routes: options.routes,
                rate: nil)
            let fullLoad = await EventPoster.run(load, origin: origin, on: posterLoop.next())
            let intakeSeconds = seconds(ContinuousClock.now - start)
            let acknowledged = fullLoad.sent.withLock { $0.count }
            await sink.wait(forCount: acknowledged, timeout: .seconds(600) - (ContinuousClock.now - start))
            let deliveredSeconds = seconds(ContinuousClock.now - start)
            let rssAfterFullLoad = ConvergenceBenchmark.rssKilobytes(measured)
            // CPU per event holds when other processes share the cores; throughput does not.
            let cpuPerEvent = (ConvergenceBenchmark.cpuSeconds(measured) - cpuBefore) / Double(max(delivered(), 1))
            say(
                String(
                    format: "  full load: intake %.0f events/s (%d acknowledged, %d posts failed), "
                        + "delivered %d in %.2f s = %.0f events/s",
                    Double(options.events) / intakeSeconds, acknowledged, fullLoad.failed.load(ordering: .relaxed),
                    delivered(), deliveredSeconds, Double(delivered()) / deliveredSeconds))
            say(
                "  \(place) CPU: "
                    + String(
                        format: "%.0f µs per event delivered, so %.0f events/s per core", cpuPerEvent * 1e6,
                        1 / max(cpuPerEvent, 1e-9)))
            say("  full load latency: " + latencies(sent: fullLoad.sent.withLock { $0 }, sink: sink))
            say("  full load answers: " + answerLatencies(fullLoad))

            // A fixed rate, for latency when the pipeline keeps up: each event is posted at its time on one of 256
            // connections, and its latency counts from that time, so a pipeline that falls behind shows as latency and
            // as a lower achieved rate.
            do {
                let count = options.pacedSeconds.map { options.rate * $0 } ?? min(options.events, options.rate * 10)
                sink.received.withLock { $0.removeAll() }
                let paced = ContinuousClock.now
                let atRate = await post(count, from: options.events, connections: 256, rate: options.rate)
                let achieved = Double(count) / seconds(ContinuousClock.now - paced)
                let acknowledgedAtRate = atRate.sent.withLock { $0.count }
                await sink.wait(forCount: acknowledgedAtRate, timeout: .seconds(120) - (ContinuousClock.now - paced))
                say(
                    String(
                        format: "  at %d events/s (%d events, %d acknowledged, posted at %.0f/s): ", options.rate,
                        count, acknowledgedAtRate, achieved)
                        + latencies(sent: atRate.sent.withLock { $0 }, sink: sink))
                say("  at \(options.rate) events/s, answers: " + answerLatencies(atRate))
            }
            try? await posterLoop.shutdownGracefully()
            try? await sinkLoop.shutdownGracefully()
            try? await Task.sleep(for: .seconds(2))
            return rssAfterFullLoad
        }
        say(
            String(
                format: "  RSS: %.1f MB before, %.1f MB after full load, %.1f MB peak, %.1f MB after",
                Double(rssBefore) / 1024, Double(rssAfterFullLoad) / 1024, Double(peakRSS) / 1024,
                Double(ConvergenceBenchmark.rssKilobytes(measured)) / 1024))
    }

    /// Runs `body`, sampling `pid`'s RSS every 500 ms meanwhile in a child task; returns what `body` returns and the
    /// peak RSS seen (in kB, at least `floor`).
    static func sampleRSS<T: Sendable>(
        of pid: Int32, from floor: Int, during body: () async -> T
    ) async -> (T, peak: Int) {
        await withTaskGroup(of: Int.self) { group in
            group.addTask {
                var peak = floor
                while !Task.isCancelled {
                    peak = max(peak, ConvergenceBenchmark.rssKilobytes(pid))
                    try? await Task.sleep(for: .milliseconds(500))
                }
                return peak
            }
            let result = await body()
            group.cancelAll()
            var peak = floor
            for await sampled in group { peak = max(peak, sampled) }
            return (result, peak)
        }
    }

    static func latencies(sent posted: [Int: UInt64], sink: EventSink) -> String {
        let received = sink.received.withLock { $0 }
        var values = received.compactMap { seq, at in posted[seq].map { Double(Int64(at) - Int64($0)) / 1e6 } }
        if let dump = ProcessInfo.processInfo.environment["EVENTS_LATENCY_DUMP"] {
            let lines = received.compactMap { seq, at in posted[seq].map { "\($0) \(Int64(at) - Int64($0))" } }
            try? lines.joined(separator: "\n").write(toFile: dump, atomically: true, encoding: .utf8)
        }
        values.sort()
        guard !values.isEmpty else { return "no deliveries" }
        func percentile(_ p: Double) -> Double { values[min(values.count - 1, Int(Double(values.count) * p))] }
        return String(
            format: "p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d delivered)", percentile(0.5), percentile(0.99),
            values.last ?? 0, values.count)
    }

    /// Posting to the 202 answer (the event durable), for `poster`'s events.
    static func answerLatencies(_ poster: EventPoster) -> String {
        let values = poster.answerTimes.withLock { $0 }.sorted()
        guard !values.isEmpty else { return "none" }
        func percentile(_ p: Double) -> Double { Double(values[min(values.count - 1, Int(Double(values.count) * p))]) / 1e6 }
        return String(format: "p50 %.2f ms, p99 %.2f ms, max %.2f ms", percentile(0.5), percentile(0.99), percentile(1))
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
