import Foundation
import Prometheus
import ServiceLifecycle
import Synchronization

/// The watches being served. The HTTP server finishes open responses before it stops, and a watch whose client
/// vanished without closing its connection would hold the controller's shutdown until the watch timed out; a
/// graceful shutdown therefore ends them all first.
public final class OpenWatches: Sendable {
    private struct State {
        var isClosed = false
        var ends: [UUID: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())
    private let gauge: Gauge?

    /// Creates the set; with a registry, its size is the gauge `steady_api_open_watches`.
    public init(registry: PrometheusCollectorRegistry? = nil) {
        gauge = registry?.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "steady", subsystem: "api", metricName: "open_watches", unitName: "",
                helpText: "Watch requests being served."))
    }

    /// Registers how to end one watch; after `endAll()` the watch is ended at once and nil returned.
    func register(_ end: @escaping @Sendable () -> Void) -> UUID? {
        let id = UUID()
        let (isClosed, count) = state.withLock { state in
            if !state.isClosed { state.ends[id] = end }
            return (state.isClosed, state.ends.count)
        }
        gauge?.set(Double(count))
        if isClosed {
            end()
            return nil
        }
        return id
    }

    func unregister(_ id: UUID?) {
        guard let id else { return }
        let count = state.withLock { state in
            state.ends.removeValue(forKey: id)
            return state.ends.count
        }
        gauge?.set(Double(count))
    }

    /// Ends every open watch and every one opened from now on.
    public func endAll() {
        let ends = state.withLock { state in
            state.isClosed = true
            defer { state.ends = [:] }
            return Array(state.ends.values)
        }
        for end in ends { end() }
    }

    /// A service that ends the open watches when graceful shutdown begins. Listed after the HTTP server, it is
    /// shut down before it (a service group stops its services in reverse order).
    public var closer: some Service { Closer(watches: self) }

    private struct Closer: Service {
        let watches: OpenWatches

        func run() async throws {
            let (stopped, stop) = AsyncStream<Void>.makeStream()
            await withGracefulShutdownHandler {
                for await _ in stopped {}
            } onGracefulShutdown: {
                watches.endAll()
                stop.finish()
            }
        }
    }
}
