import Events
import Logging
import Resources
import ServiceLifecycle

/// Writes the event pipeline's counters into Route and Action status: `matchedEvents`, `delivered`, `failed` and
/// `pending`, and a `Degraded` condition on an Action whose deliveries keep failing, naming the last error.
///
/// Woken when counters change, it writes at most once per ``interval`` (a busy pipeline changes them thousands of
/// times a second). Counts are added to what the status already holds, so they survive a controller restart.
public final class EventStatusWriter: Service, Sendable {
    /// Given-up deliveries in a row, since the last success, that make an Action `Degraded`.
    public static let degradedAfter: Int64 = 3
    static let fieldManager = "steady-events"

    let pipeline: EventPipeline
    let objects: ObjectService
    let interval: Duration
    let changed = WakeSignal()
    let logger: Logger

    public init(pipeline: EventPipeline, objects: ObjectService, interval: Duration = .seconds(2), logger: Logger) {
        self.pipeline = pipeline
        self.objects = objects
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        pipeline.onCountersChanged { [changed] in changed.signal() }
        await cancelWhenGracefulShutdown {
            var written: (routes: [String: EventPipeline.Counters], actions: [String: EventPipeline.Counters]) = (
                [:], [:]
            )
            var pendingWritten: (routes: [String: Int], actions: [String: Int]) = ([:], [:])
            while !Task.isCancelled {
                await self.changed.wait()
                if Task.isCancelled { return }
                let current = self.pipeline.counters
                let pending = (routes: self.pipeline.pendingByRoute, actions: self.pipeline.pendingByAction)
                for (route, counters) in current.routes {
                    let before = written.routes[route] ?? EventPipeline.Counters()
                    guard counters != before || pending.routes[route] != pendingWritten.routes[route] else { continue }
                    if await self.write(Kinds.route, route, counters, before, pending.routes[route] ?? 0) {
                        written.routes[route] = counters
                        pendingWritten.routes[route] = pending.routes[route]
                    }
                }
                for (action, counters) in current.actions {
                    let before = written.actions[action] ?? EventPipeline.Counters()
                    guard counters != before || pending.actions[action] != pendingWritten.actions[action] else {
                        continue
                    }
                    if await self.write(Kinds.action, action, counters, before, pending.actions[action] ?? 0) {
                        written.actions[action] = counters
                        pendingWritten.actions[action] = pending.actions[action]
                    }
                }
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    /// Adds the counts since `before` to the object's status; false when it could not be written.
    private func write(
        _ info: KindInfo, _ name: String, _ counters: EventPipeline.Counters, _ before: EventPipeline.Counters,
        _ pending: Int
    ) async -> Bool {
        do {
            try await objects.updateStatus(info, name: name, options: WriteOptions(fieldManager: Self.fieldManager)) {
                object in
                let status = object["status"]
                func added(_ field: String, _ now: Int64, _ then: Int64) -> JSONValue {
                    .int((status?[field]?.intValue ?? 0) + now - then)
                }
                var fields: JSONValue = [
                    "delivered": added("delivered", counters.delivered, before.delivered),
                    "failed": added("failed", counters.failed, before.failed), "pending": .int(Int64(pending)),
                ]
                if info.kind == RouteSpec.kind {
                    fields["matchedEvents"] = added("matchedEvents", counters.matched, before.matched)
                    if counters.matched != before.matched { fields["lastMatchTime"] = .string(Timestamp.now()) }
                } else {
                    var conditions = StatusReport.existingConditions(of: object)
                    let isDegraded = counters.failingInARow >= Self.degradedAfter
                    if isDegraded || conditions[type: "Degraded"] != nil {
                        conditions.set(
                            isDegraded
                                ? Condition(
                                    type: "Degraded", status: .true, reason: "DeliveriesFailing",
                                    message: "\(counters.failingInARow) deliveries in a row failed; the last: "
                                        + (counters.lastError ?? "unknown"),
                                    observedGeneration: StatusReport.generation(of: object))
                                : Condition(
                                    type: "Degraded", status: .false, reason: "Delivering",
                                    message: "the last delivery succeeded",
                                    observedGeneration: StatusReport.generation(of: object)))
                        fields["conditions"] = try JSONValue(encoding: conditions)
                    }
                }
                return fields
            }
            return true
        } catch {
            logger.debug(
                "cannot write event counters", metadata: ["steady.object": "\(info.kind)/\(name)", "steady.error": "\(error)"])
            return false
        }
    }
}
