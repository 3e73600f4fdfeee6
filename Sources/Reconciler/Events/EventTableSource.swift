import Events
import Logging
import Resources
import Routing
import ServiceLifecycle

/// Keeps the controller's event pipeline on the current configuration: rebuilds its route table whenever a Route,
/// Action, Template, Secret or Assignment changes, once per batch of changes, and never per event.
///
/// On the controller every route is evaluated; its local actions are those no Assignment places on a runner.
public final class EventTableSource: Service, Sendable {
    static let kinds: Set<String> = [
        RouteSpec.kind, ActionSpec.kind, TemplateSpec.kind, Secret.kind, AssignmentSpec.kind,
    ]

    let informer: SharedInformer
    let pipeline: EventPipeline
    let compiled: CompiledCache
    let placements = PlacementResolver()
    let changed = WakeSignal()
    let logger: Logger

    public init(informer: SharedInformer, pipeline: EventPipeline, logger: Logger) {
        self.informer = informer
        self.pipeline = pipeline
        self.compiled = CompiledCache()
        self.logger = logger
    }

    public func run() async throws {
        informer.subscribe { [changed] update in
            if update.changes.contains(where: Self.changesTheTable) { changed.signal() }
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.changed.wait()
                if Task.isCancelled { return }
                self.rebuild()
            }
        }
    }

    /// Whether `change` can change the table: an object of a kind it is built from, added, deleted or with another
    /// spec (or a Secret's data). A status write (the pipeline's own counters, every few seconds under load) cannot.
    static func changesTheTable(_ change: ObjectChange) -> Bool {
        guard kinds.contains(change.key.kind) else { return false }
        guard let old = change.old, let new = change.new else { return true }
        return old["spec"] != new["spec"] || old["data"] != new["data"]
    }

    /// Builds the table from the informer's cache and hands it to the pipeline.
    func rebuild() {
        let cache = informer.cache
        let table = RouteTable.build(
            revision: cache.revision, routes: cache.objects(kind: RouteSpec.kind),
            actions: cache.objects(kind: ActionSpec.kind), templates: cache.objects(kind: TemplateSpec.kind),
            secrets: cache.objects(kind: Secret.kind),
            isLocal: { [placements] action in
                placements.assignments(naming: ObjectKey(kind: ActionSpec.kind, name: action), in: cache).isEmpty
            },
            compiled: compiled)
        logger.debug("event routes rebuilt", metadata: ["steady.revision": "\(table.revision)"])
        pipeline.update(table)
    }
}
