import Prometheus
import Resources

/// What an operator watches of the event pipeline on `/metrics`.
public struct EventMetrics: Sendable {
    let received: Counter
    let rejected: Counter
    let registry: PrometheusCollectorRegistry
    let queueDepth: Gauge
    let outboxDepth: Gauge
    let retried: Counter

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        received = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "steady", subsystem: "events", metricName: "received", unitName: "total",
                helpText: "Events taken in and written to the queue."))
        rejected = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "steady", subsystem: "events", metricName: "rejected", unitName: "total",
                helpText: "Events refused at intake (invalid, too large, queue full)."))
        retried = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "steady", subsystem: "events", metricName: "retried", unitName: "total",
                helpText: "Delivery attempts that failed and will be tried again."))
        queueDepth = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "steady", subsystem: "events", metricName: "queue_depth", unitName: "",
                helpText: "Events taken in and not yet routed."))
        outboxDepth = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "steady", subsystem: "events", metricName: "outbox_depth", unitName: "",
                helpText: "Deliveries in the outbox, not delivered and not given up."))
    }

    func matched(route: String, count: Int64) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "steady", subsystem: "events", metricName: "matched", unitName: "total",
                helpText: "Events that matched a route."),
            labels: [("route", route)]
        ).increment(by: count)
    }

    func finished(action: String, result: ExecutionRecord.Result, count: Int64) {
        switch result {
        case .succeeded, .failed:
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "steady", subsystem: "events",
                    metricName: result == .succeeded ? "delivered" : "failed", unitName: "total",
                    helpText: result == .succeeded
                        ? "Deliveries that reached their receiver." : "Deliveries given up as failed."),
                labels: [("action", action)]
            ).increment(by: count)
        case .retrying:
            retried.increment(by: count)
        }
    }
}
