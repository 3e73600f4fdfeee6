import Prometheus
import Resources

/// What an operator watches first about the runners: how many agents are connected, how many runners are in
/// each condition, how much configuration is pushed to them, and whether their statuses can be written.
///
/// The agent gateway calls ``runnerConnected()``, ``runnerDisconnected()``, ``slicePushed(bytes:)`` and
/// ``statusWriteFailed()`` as those things happen; the runner-condition gauge is refreshed from the Runner
/// objects on each scrape (``setRunnerConditions(of:)``).
public struct GatewayMetrics: Sendable {
    /// The condition types counted by ``setRunnerConditions(of:)``.
    public static let conditionTypes = ["Connected", "Synced", "Ready"]
    /// The condition statuses counted; a runner without the condition counts as `Unknown`.
    public static let conditionStatuses = ["True", "False", "Unknown"]

    private let connected: Gauge
    private let pushes: Counter
    private let pushedBytes: Counter
    private let statusWriteFailures: Counter
    /// Keyed by `type/status`.
    private let conditions: [String: Gauge]

    /// Registers the metrics in `registry`.
    public init(registry: PrometheusCollectorRegistry) {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(
                namespace: "steady", subsystem: "gateway", metricName: metric, unitName: unit, helpText: help)
        }
        connected = registry.makeGauge(
            descriptor: name("connected_runners", "", "Agents holding a slice stream to this controller."))
        pushes = registry.makeCounter(
            descriptor: name("slice_pushes", "total", "Slice snapshots and diffs sent to agents."))
        pushedBytes = registry.makeCounter(
            descriptor: name("slice_pushed", "bytes_total", "Bytes of slice snapshots and diffs sent to agents."))
        statusWriteFailures = registry.makeCounter(
            descriptor: name("status_write_failures", "total", "Runner status writes that failed."))
        let runners = MetricNameDescriptor(
            namespace: "steady", subsystem: "", metricName: "runners", unitName: "",
            helpText: "Runners by condition type and status (a missing condition counts as Unknown).")
        var conditions: [String: Gauge] = [:]
        for type in Self.conditionTypes {
            for status in Self.conditionStatuses {
                conditions["\(type)/\(status)"] = registry.makeGauge(
                    descriptor: runners, labels: [("condition", type), ("status", status)])
            }
        }
        self.conditions = conditions
    }

    /// An agent opened its slice stream.
    public func runnerConnected() {
        connected.increment()
    }

    /// An agent's slice stream ended.
    public func runnerDisconnected() {
        connected.decrement()
    }

    /// A slice snapshot or diff of `bytes` bytes was sent to an agent.
    public func slicePushed(bytes: Int) {
        pushes.increment()
        pushedBytes.increment(by: Int64(max(bytes, 0)))
    }

    /// Writing a runner's status failed.
    public func statusWriteFailed() {
        statusWriteFailures.increment()
    }

    /// Sets the runner-condition gauge from the Runner objects.
    public func setRunnerConditions(of runners: some Sequence<JSONValue>) {
        for (key, count) in Self.countConditions(of: runners) {
            conditions[key]?.set(Int64(count))
        }
    }

    /// How many runners have each condition type in each status, keyed by `type/status`; every key is present.
    static func countConditions(of runners: some Sequence<JSONValue>) -> [String: Int] {
        var counts: [String: Int] = [:]
        for type in conditionTypes {
            for status in conditionStatuses { counts["\(type)/\(status)"] = 0 }
        }
        for runner in runners {
            let present = runner["status"]?["conditions"]?.arrayValue ?? []
            for type in conditionTypes {
                let status = present.first { $0["type"]?.stringValue == type }?["status"]?.stringValue
                let counted = status.flatMap { conditionStatuses.contains($0) ? $0 : nil } ?? "Unknown"
                counts["\(type)/\(counted)", default: 0] += 1
            }
        }
        return counts
    }
}
