import Foundation
import Logging
import Prometheus
import Reconciler
import Resources

/// `steady-bench reconcile [--objects N] [--workers W]`: how long the controller's reconcilers take to bring N
/// routes and N actions to Ready, in one process over a fresh SQLite store.
enum ReconcileBenchmark {
    static func run(count: Int, workers: Int) async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steady-bench-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            let store = try SQLiteStore(path: directory.appendingPathComponent("state.db").path)
            defer { store.close() }
            let objects = ObjectService(store: store)
            let clock = ContinuousClock()
            let writeStart = clock.now
            for index in 0..<count {
                let action: JSONValue = [
                    "apiVersion": "steady.dev/v1", "kind": "Action", "metadata": ["name": .string("action-\(index)")],
                    "spec": ["type": "stdout"],
                ]
                let route: JSONValue = [
                    "apiVersion": "steady.dev/v1", "kind": "Route", "metadata": ["name": .string("route-\(index)")],
                    "spec": ["input": "", "actions": [.string("action-\(index)")]],
                ]
                _ = try await objects.create(Kinds.action, body: action, options: WriteOptions())
                _ = try await objects.create(Kinds.route, body: route, options: WriteOptions())
            }
            let written = writeStart.duration(to: clock.now)
            var logger = Logger(label: "steady.bench")
            logger.logLevel = .warning
            let manager = ControllerManager(
                objects: objects, registry: PrometheusCollectorRegistry(), logger: logger, workers: workers)
            let start = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await manager.run() }
                // The manager's cache is what the store's watch delivered: cheap to look at.
                func readyCount(_ kind: String) -> Int {
                    manager.cache.withEntries(kind: kind) { entries in
                        entries.values.count { entry in
                            (entry.value["status"]?["conditions"]?.arrayValue ?? []).contains {
                                $0["type"] == "Ready" && $0["status"] == "True"
                            }
                        }
                    }
                }
                while readyCount("Route") < count || readyCount("Action") < count {
                    try await Task.sleep(for: .milliseconds(50))
                }
                let converged = start.duration(to: clock.now)
                let seconds = Double(converged.components.seconds) + Double(converged.components.attoseconds) / 1e18
                say(
                    "reconcile benchmark: \(count) routes + \(count) actions written in \(written), Ready after "
                        + "\(converged) with \(workers) workers (\(Int(Double(2 * count) / seconds)) objects/s)")
                group.cancelAll()
            }
        } catch {
            fail("reconcile benchmark failed: \(error)")
        }
    }
}
