import Prometheus
import Resources
import Synchronization

/// What an operator watches of the event pipeline on `/metrics`.
public struct EventMetrics: Sendable {
    let received: Counter
    let rejected: Counter
    let registry: PrometheusCollectorRegistry
    let queueDepth: Gauge
    let outboxDepth: Gauge
    let retried: Counter
    /// Counters by name and label, made once: the registry validates and looks up names on every make, a visible
    /// share of a busy pipeline's profile when it was called for every batch.
    private let labelled = LabelledCounters()

    private final class LabelledCounters: Sendable {
        struct Key: Hashable {
            var name: String
            var label: String
        }

        let made = Mutex<[Key: Counter]>([:])
    }

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
        counter("matched", label: ("route", route), help: "Events that matched a route.").increment(by: count)
    }

    func finished(action: String, result: ExecutionRecord.Result, count: Int64) {
        switch result {
        case .succeeded:
            counter("delivered", label: ("action", action), help: "Deliveries that reached their receiver.")
                .increment(by: count)
        case .failed:
            counter("failed", label: ("action", action), help: "Deliveries given up as failed.").increment(by: count)
        case .retrying:
            retried.increment(by: count)
        }
    }

    private func counter(_ name: String, label: (String, String), help: String) -> Counter {
        let key = LabelledCounters.Key(name: name, label: label.1)
        if let made = labelled.made.withLock({ $0[key] }) { return made }
        let made = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "steady", subsystem: "events", metricName: name, unitName: "total", helpText: help),
            labels: [label])
        labelled.made.withLock { $0[key] = made }
        return made
    }
}
