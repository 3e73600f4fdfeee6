import Prometheus

/// The controller's metrics: reconciles by kind and result, reconcile durations, and the work queue's depth, in
/// all and per kind.
public struct ControllerMetrics: Sendable {
    /// The registry the metrics are registered in.
    public let registry: PrometheusCollectorRegistry
    private let depth: Gauge
    private static var kindDepthName: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "steady", subsystem: "controller", metricName: "workqueue_depth_by_kind", unitName: "",
            helpText: "Keys waiting in the controller's work queue, by kind.")
    }
    private let kindDepths: [String: Gauge]
    private let reconciles: [String: Counter]
    private let durations: [String: DurationHistogram]

    /// The results a reconcile is counted under.
    public enum Result: String, Sendable, CaseIterable {
        /// The status was computed and written (or was already up to date).
        case success
        /// The reconcile failed and was re-queued with backoff.
        case error
    }

    /// Registers the metrics for `kinds` in `registry`.
    public init(registry: PrometheusCollectorRegistry, kinds: some Sequence<String>) {
        self.registry = registry
        depth = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "steady", subsystem: "controller", metricName: "workqueue_depth", unitName: "",
                helpText: "Keys waiting in the controller's work queue."))
        let reconcileName = MetricNameDescriptor(
            namespace: "steady", subsystem: "controller", metricName: "reconciles", unitName: "total",
            helpText: "Reconciles by kind and result.")
        let durationName = MetricNameDescriptor(
            namespace: "steady", subsystem: "controller", metricName: "reconcile_duration", unitName: "seconds",
            helpText: "Time to reconcile one object, by kind.")
        let buckets: [Duration] = [
            .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(10),
            .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        var reconciles: [String: Counter] = [:]
        var durations: [String: DurationHistogram] = [:]
        var kindDepths: [String: Gauge] = [:]
        for kind in kinds {
            kindDepths[kind] = registry.makeGauge(descriptor: Self.kindDepthName, labels: [("kind", kind)])
            for result in Result.allCases {
                reconciles["\(kind)/\(result.rawValue)"] = registry.makeCounter(
                    descriptor: reconcileName, labels: [("kind", kind), ("result", result.rawValue)])
            }
            durations[kind] = registry.makeDurationHistogram(
                descriptor: durationName, labels: [("kind", kind)], buckets: buckets)
        }
        self.reconciles = reconciles
        self.durations = durations
        self.kindDepths = kindDepths
    }

    /// Registers the metrics in the registry of the API's metrics, so that `/metrics` shows them.
    public init(apiMetrics: APIMetrics, kinds: some Sequence<String>) {
        self.init(registry: apiMetrics.registry, kinds: kinds)
    }

    /// Counts one reconcile of `kind` and records how long it took.
    func recordReconcile(kind: String, result: Result, duration: Duration) {
        reconciles["\(kind)/\(result.rawValue)"]?.increment()
        durations[kind]?.record(duration)
    }

    /// Sets the queue-depth gauge.
    func setQueueDepth(_ value: Int) {
        depth.set(Int64(value))
    }

    /// Sets the per-kind queue-depth gauge: the count of each kind in `depths`, zero for kinds not in it.
    func setQueueDepths(_ depths: [String: Int]) {
        for (kind, gauge) in kindDepths { gauge.set(Int64(depths[kind] ?? 0)) }
        for (kind, count) in depths where kindDepths[kind] == nil {
            registry.makeGauge(descriptor: Self.kindDepthName, labels: [("kind", kind)]).set(Int64(count))
        }
    }
}

extension ControllerManager {
    /// Sets the per-kind work-queue depth gauge from the queue; `/metrics` runs it before each scrape.
    public func collectQueueDepths() {
        metrics.setQueueDepths(queue.depths(by: \.kind))
    }
}
