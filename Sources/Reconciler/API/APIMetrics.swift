import Prometheus

/// The counters and gauges an operator watches on `/metrics`.
public struct APIMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    func countRequest(verb: String, resource: String, code: Int) {
        let name = MetricNameDescriptor(
            namespace: "steady", subsystem: "api", metricName: "requests", unitName: "total",
            helpText: "API requests by verb, resource and HTTP status code.")
        registry.makeCounter(
            descriptor: name, labels: [("verb", verb), ("resource", resource), ("code", String(code))]
        ).increment()
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
