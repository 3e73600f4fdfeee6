import Prometheus
import Synchronization

/// The counters and gauges an operator watches on `/metrics`.
///
/// Gauges that are cheaper to compute when scraped than to keep up to date (runners per condition, work-queue
/// depth per kind) are set by collectors, which ``collect()`` runs before each scrape is rendered.
public struct APIMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// The agent gateway's metrics: connected runners, runners per condition, slice pushes, status-write failures.
    public let gateway: GatewayMetrics
    private let collectors: Collectors

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.gateway = GatewayMetrics(registry: registry)
        self.collectors = Collectors()
    }

    func countRequest(verb: String, resource: String, code: Int) {
        let name = MetricNameDescriptor(
            namespace: "steady", subsystem: "api", metricName: "requests", unitName: "total",
            helpText: "API requests by verb, resource and HTTP status code.")
        registry.makeCounter(
            descriptor: name, labels: [("verb", verb), ("resource", resource), ("code", String(code))]
        ).increment()
    }

    /// Adds a collector, run on every scrape before the metrics are rendered; it should only set gauges.
    public func addCollector(_ collector: @escaping @Sendable () async -> Void) {
        collectors.list.withLock { $0.append(collector) }
    }

    /// Runs every collector.
    public func collect() async {
        for collector in collectors.list.withLock({ $0 }) { await collector() }
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// The collectors, shared by every copy of the metrics.
    private final class Collectors: Sendable {
        let list = Mutex<[@Sendable () async -> Void]>([])
    }
}
