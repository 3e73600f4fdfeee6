import Foundation
import Logging
import Prometheus
import Resources
import ServiceLifecycle

/// Runs the controller's reconcilers: an informer filling a cache from the store's watch, a work queue, and
/// workers writing each object's status.
///
/// Every change the informer applies is turned into the keys it affects (`ReconcileTriggers`); a worker takes a
/// key, reads the object, asks its kind's `StatusReconciler` for the status and writes it through the `status`
/// subresource as field manager `steady-controller`. A failed reconcile is retried with per-key backoff.
///
/// `run()` returns on graceful shutdown or cancellation.
public struct ControllerManager: Service {
    /// The field manager the controller writes status as.
    public static let fieldManager = "steady-controller"

    /// The informer's cache: read access for other controller components.
    public var cache: ObjectCache { informer.cache }
    /// The desired state; run by this manager only when it was not given the controller's shared one.
    let informer: SharedInformer
    private let runsInformer: Bool
    /// The API operations statuses are written through.
    public let objects: ObjectService
    /// The number of concurrent workers.
    public let workers: Int
    let queue: WorkQueue<ObjectKey>
    let reconcilers: [String: any StatusReconciler]
    let metrics: ControllerMetrics
    let logger: Logger
    let placements: PlacementResolver

    /// Creates a manager with the status reconcilers (Route, Action, Template, Assignment, RemoteRun).
    ///
    /// - Parameters:
    ///   - objects: The API's operations over the store.
    ///   - registry: Where the controller's metrics are registered.
    ///   - logger: The logger; entries carry `steady.kind` and `steady.name`.
    ///   - workers: How many objects are reconciled concurrently.
    ///   - backoff: The per-key backoff after a failed reconcile.
    ///   - syncIndex: What each runner's agent holds (the agent gateway's), to report how many runners hold each
    ///     Route, Action and Assignment; nil leaves that out.
    ///   - informer: The controller's shared informer; without one the manager lists and watches the store itself.
    public init(
        objects: ObjectService, registry: PrometheusCollectorRegistry, logger: Logger, workers: Int = 4,
        backoff: Backoff = .perKeyRetry, syncIndex: RunnerSyncIndex? = nil,
        informer: SharedInformer? = nil
    ) {
        let placements = PlacementResolver(syncIndex: syncIndex)
        let reconcilers: [any StatusReconciler] = [
            RouteReconciler(placements: placements, compiled: objects.compiled),
            ActionReconciler(placements: placements), TemplateReconciler(compiled: objects.compiled),
            AssignmentReconciler(placements: placements), RemoteRunReconciler(),
        ]
        let metrics = ControllerMetrics(registry: registry, kinds: reconcilers.map(\.info.kind))
        self.objects = objects
        self.workers = max(workers, 1)
        self.logger = logger
        self.metrics = metrics
        self.placements = placements
        self.reconcilers = Dictionary(uniqueKeysWithValues: reconcilers.map { ($0.info.kind, $0) })
        self.informer = informer ?? SharedInformer(store: objects.store, logger: logger)
        self.runsInformer = informer == nil
        self.queue = WorkQueue(backoff: backoff, depthObserver: { metrics.setQueueDepth($0) })
    }

    /// Creates a manager whose metrics appear with the API's on `/metrics`.
    public init(
        objects: ObjectService, metrics: APIMetrics, logger: Logger, workers: Int = 4,
        backoff: Backoff = .perKeyRetry, syncIndex: RunnerSyncIndex? = nil,
        informer: SharedInformer? = nil
    ) {
        self.init(
            objects: objects, registry: metrics.registry, logger: logger, workers: workers, backoff: backoff,
            syncIndex: syncIndex, informer: informer)
    }

    /// Lists, watches and reconciles until graceful shutdown or cancellation.
    public func run() async throws {
        logger.info("starting controller", metadata: ["steady.workers": "\(workers)"])
        await cancelWhenGracefulShutdown {
            await withTaskCancellationHandler {
                await withTaskGroup(of: Void.self) { group in
                    // The informer's task only hands changes over: working out what they trigger happens here,
                    // so the agent gateway, fed by the same informer, does not wait for it.
                    let changes = Mailbox<InformerUpdate>()
                    let subscription = informer.subscribe { update in
                        if !update.changes.isEmpty { changes.post(update) }
                    }
                    // A manager that stops (a leader's term ended) leaves no subscriber filling its mailbox.
                    defer { informer.unsubscribe(subscription) }
                    group.addTask {
                        for await _ in changes.arrivals {
                            for update in changes.take() {
                                for change in update.changes { enqueue(change) }
                            }
                        }
                    }
                    if runsInformer { group.addTask { try? await informer.run() } }
                    group.addTask { await queue.run() }
                    if let index = placements.syncIndex {
                        group.addTask { await followSync(index) }
                    }
                    for _ in 0..<workers {
                        group.addTask { await work() }
                    }
                    await group.waitForAll()
                }
            } onCancel: {
                queue.shutDown()
            }
        }
        logger.info("controller stopped")
    }

    /// Reconciles one object now, outside the queue; for tests and tools.
    ///
    /// The object is read from the store, not the cache, and the status is written only if the object has not
    /// changed since (a `resourceVersion` precondition): the conditions array is replaced as a whole, so this
    /// keeps conditions written meanwhile by other components. A lost race is retried with a fresh read.
    public func reconcile(_ key: ObjectKey) async throws {
        guard let reconciler = reconcilers[key.kind] else { return }
        for attempt in 1...3 {
            let outcome = try await reconcileOnce(key, with: reconciler, isLastAttempt: attempt == 3)
            if outcome != .conflict { return }
        }
    }

    private enum Outcome { case written, gone, conflict }

    private func reconcileOnce(
        _ key: ObjectKey, with reconciler: any StatusReconciler, isLastAttempt: Bool
    ) async throws -> Outcome {
        var isWritten = false
        do {
            // The status is computed from the object as read for the write, so nothing stale is written.
            isWritten = try await objects.updateStatus(
                reconciler.info, name: key.name, options: WriteOptions(fieldManager: ControllerManager.fieldManager)
            ) { object in
                try reconciler.status(of: object, in: cache)
            }
        } catch {
            if error.reason == .conflict && !isLastAttempt { return .conflict }
            throw error
        }
        guard isWritten else {
            if key.kind == AssignmentSpec.kind { placements.forget(assignment: key.name) }
            return .gone
        }
        return .written
    }

    private func enqueue(_ change: ObjectChange) {
        for key in ReconcileTriggers.keys(for: change, in: cache) {
            queue.add(key)
        }
    }

    /// Re-queues, in batches, what a change of the runners' held slices affects: the Routes and Actions whose
    /// holders changed, the Routes using those Actions, and the Assignments naming either. It wakes when the index
    /// changes, then gathers for a moment: a thousand runners syncing a route within one interval cost it one
    /// reconcile.
    private func followSync(_ index: RunnerSyncIndex) async {
        for await _ in index.changes {
            try? await Task.sleep(for: Self.syncBatchInterval)
            var keys: Set<ObjectKey> = []
            for changed in index.takeChangedKeys() {
                let key = ObjectKey(kind: changed.kind, name: changed.name)
                keys.insert(key)
                keys.formUnion(
                    cache.referrers(of: key).filter { $0.kind == AssignmentSpec.kind || $0.kind == RouteSpec.kind })
            }
            for key in keys { queue.add(key) }
        }
    }

    /// How long changes of the runners' held slices are gathered before their objects are re-queued.
    static let syncBatchInterval = Duration.milliseconds(200)

    private func work() async {
        let clock = ContinuousClock()
        while let key = await queue.get() {
            let start = clock.now
            do {
                try await reconcile(key)
                queue.forget(key)
                metrics.recordReconcile(kind: key.kind, result: .success, duration: start.duration(to: clock.now))
                logger.trace("reconciled", metadata: ["steady.kind": "\(key.kind)", "steady.name": "\(key.name)"])
            } catch {
                metrics.recordReconcile(kind: key.kind, result: .error, duration: start.duration(to: clock.now))
                if !Task.isCancelled {
                    let delay = queue.addRateLimited(key)
                    logger.info(
                        "reconcile failed; retrying",
                        metadata: [
                            "steady.kind": "\(key.kind)", "steady.name": "\(key.name)", "steady.error": "\(error)",
                            "steady.retryDelay": "\(delay)",
                        ])
                }
            }
            queue.done(key)
        }
    }
}
