import Events
import Logging
import Resources
import ServiceLifecycle

/// Writes the event pipeline's counters into Route and Action status: `matchedEvents`, `delivered`, `failed` and
/// `pending`, and a `Degraded` condition on an Action whose deliveries keep failing, naming the last error.
///
/// Woken when counters change, it writes at most once per ``interval`` (a busy pipeline changes them thousands of
/// times a second). Counts are added to what the status already holds, so they survive a controller restart.
///
/// With several controllers on one store, every replica delivers the events it took in, and every replica runs a
/// writer of its own (named by ``replica``). The counts merge by addition: each writer adds only its own increments,
/// in a compare-and-set retried on conflict, so the status holds the cluster's sum and no increment is lost or
/// counted twice. Levels cannot be added: each replica keeps its `pending` deliveries and its failures in a row
/// under `status.replicas[replica]`, replacing only its own entry; `pending` is the sum of the entries, and an
/// Action is `Degraded` while any replica's deliveries keep failing. Only its own replica replaces an entry, the
/// next time it writes that object's counters; the entry of a replica gone for good stays (its outbox still holds
/// those deliveries).
public final class EventStatusWriter: Service, Sendable {
    /// Given-up deliveries in a row, since the last success, that make an Action `Degraded`.
    public static let degradedAfter: Int64 = 3
    static let fieldManager = "steady-events"

    let pipeline: EventPipeline
    let objects: ObjectService
    let interval: Duration
    /// This replica's key in `status.replicas`; nil for a lone controller, which writes no `replicas`.
    let replica: String?
    let changed = WakeSignal()
    let logger: Logger

    public init(
        pipeline: EventPipeline, objects: ObjectService, interval: Duration = .seconds(2), replica: String? = nil,
        logger: Logger
    ) {
        self.pipeline = pipeline
        self.objects = objects
        self.interval = interval
        self.replica = replica
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

    /// Adds the counts since `before` to the object's status and sets this replica's levels; false when it could not
    /// be written.
    func write(
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
                let isAction = info.kind != RouteSpec.kind
                let own = ReplicaDeliveries(
                    pending: Int64(pending), failingInARow: isAction ? counters.failingInARow : nil,
                    lastError: isAction ? counters.lastError : nil)
                var replicas: [String: ReplicaDeliveries] = [:]
                if let replica {
                    replicas = (try? status?["replicas"]?.decode(as: [String: ReplicaDeliveries].self)) ?? [:]
                    replicas[replica] = own
                }
                var fields: JSONValue = [
                    "delivered": added("delivered", counters.delivered, before.delivered),
                    "failed": added("failed", counters.failed, before.failed),
                    "pending": .int(replica == nil ? Int64(pending) : replicas.values.reduce(0) { $0 + ($1.pending ?? 0) }),
                ]
                if replica != nil { fields["replicas"] = try JSONValue(encoding: replicas) }
                if !isAction {
                    fields["matchedEvents"] = added("matchedEvents", counters.matched, before.matched)
                    if counters.matched != before.matched { fields["lastMatchTime"] = .string(Timestamp.now()) }
                    return fields
                }
                let shares = replica == nil ? [("", own)] : replicas.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
                let failing = shares.first { ($0.1.failingInARow ?? 0) >= Self.degradedAfter }
                var conditions = StatusReport.existingConditions(of: object)
                if failing != nil || conditions[type: "Degraded"] != nil {
                    let generation = StatusReport.generation(of: object)
                    if let failing {
                        let (name, share) = failing
                        conditions.set(
                            Condition(
                                type: "Degraded", status: .true, reason: "DeliveriesFailing",
                                message: "\(share.failingInARow ?? 0) deliveries in a row failed"
                                    + (name.isEmpty ? "" : " on \(name)") + "; the last: " + (share.lastError ?? "unknown"),
                                observedGeneration: generation))
                    } else {
                        conditions.set(
                            Condition(
                                type: "Degraded", status: .false, reason: "Delivering",
                                message: "the last delivery succeeded", observedGeneration: generation))
                    }
                    fields["conditions"] = try JSONValue(encoding: conditions)
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
