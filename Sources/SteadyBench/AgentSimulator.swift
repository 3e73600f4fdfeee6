import Agent
import AsyncHTTPClient
import Foundation
import Logging
import Resources

/// `steady-bench converge-worker`: one share of the simulated agents, run in a child process so that no process
/// needs more descriptors than the open-file limit allows.
///
/// It talks to its parent over lines: it prints `ready` once every agent holds its first slice, waits for `go`
/// on standard input, prints `held NANOSECONDS` (the system-wide monotonic clock) once every agent holds a slice
/// of `--objects` objects, and stops when its standard input closes.
enum AgentSimulator {
    struct Options {
        var controllerURL = ""
        var joinToken = ""
        var first = 0
        var count = 0
        var objects = 3
        /// How many agents start at a time.
        var wave = 100
        /// The agents' run command (`remoterun`); each agent then keeps a run ledger under `stateBase`.
        var runCommand: [String]?
        var stateBase: String?
    }

    static func run(_ options: Options) async {
        guard let joinToken = try? AgentJoinToken(parsing: options.joinToken) else { fail("worker: bad join token") }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        // One HTTP client per agent, as on real hosts: each agent holds its own connection to the controller.
        let agents = (options.first..<options.first + options.count).map { index in
            Agent(
                configuration: AgentConfiguration(
                    controllerURL: options.controllerURL, name: "bench-\(index)", labels: ["role": "bench"],
                    joinToken: joinToken, runCommand: options.runCommand, heartbeatInterval: .seconds(30)),
                sliceStorage: InMemoryAgentStorage(), identityStorage: InMemoryAgentStorage(), httpClient: nil,
                runLedgerDirectory: ledgerDirectory(options, index), logger: logger)
        }
        let commands = standardInputLines()
        await withTaskGroup(of: Void.self) { group in
            // Started in waves, so that thousands of TLS handshakes and enrolments do not all queue up at once
            // (timing out and retrying) on a controller with few cores; only connecting is paced, not the figures.
            for wave in stride(from: 0, to: agents.count, by: options.wave) {
                let started = agents[wave..<min(wave + options.wave, agents.count)]
                for agent in started { group.addTask { try? await agent.run() } }
                await waitUntilAll(Array(started)) { _ in true }
            }
            say("ready")
            var iterator = commands.makeAsyncIterator()
            guard await iterator.next() == "go" else {
                group.cancelAll()
                return
            }
            await waitUntilAll(agents) { $0.objects.count == options.objects }
            say("held \(monotonicNanoseconds())")
            // Keep the agents connected (the parent measures the controller) until the parent is done.
            while await iterator.next() != nil {}
            group.cancelAll()
        }
    }

    /// A run ledger directory of its own for agent `index`, when the agents run commands.
    static func ledgerDirectory(_ options: Options, _ index: Int) -> String? {
        guard let base = options.stateBase else { return nil }
        let path = "\(base)/agent-\(index)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Polls only the agents that do not yet hold a matching slice, so a round gets cheaper as they converge.
    static func waitUntilAll(_ agents: [Agent], _ condition: @Sendable (RunnerSlice) -> Bool) async {
        var pending = agents
        while !pending.isEmpty {
            var still: [Agent] = []
            for agent in pending {
                let slice = await agent.state.currentSlice
                if slice.revision == 0 || !condition(slice) { still.append(agent) }
            }
            pending = still
            if !pending.isEmpty { try? await Task.sleep(for: .milliseconds(2)) }
        }
    }

    /// Standard input, line by line; reading blocks, so it runs on its own thread.
    static func standardInputLines() -> AsyncStream<String> {
        let (lines, continuation) = AsyncStream<String>.makeStream()
        let reader = Thread {
            while let line = readLine() { continuation.yield(line) }
            continuation.finish()
        }
        reader.start()
        return lines
    }
}

/// The system-wide monotonic clock, comparable between processes (unlike a `ContinuousClock.Instant`).
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}
