import Logging
import ServiceLifecycle
import Synchronization

/// What an informer applied to its cache in one step: the changes (none for a write of a kind the cache does not
/// hold) and the store revision the cache reflects after them.
public struct InformerUpdate: Sendable, Equatable {
    /// The changes, in revision order.
    public var changes: [ObjectChange]
    /// The store revision seen.
    public var revision: Int64

    /// Creates an update.
    public init(changes: [ObjectChange], revision: Int64) {
        self.changes = changes
        self.revision = revision
    }
}

/// The controller's one list and watch of the store: the reconcilers and the agent gateway read the same cache and
/// are told of the same changes, so every object is held and parsed once.
///
/// Subscribers are called on the informer's task, in revision order; they should only hand the update over. A
/// subscriber that joins after the first list is first given the whole cache, as additions.
public final class SharedInformer: Service, Sendable {
    /// The cache every subscriber reads.
    public let cache: ObjectCache
    let store: any ObjectStore
    let logger: Logger
    private let subscribers = Mutex<[(id: Int, call: @Sendable (InformerUpdate) -> Void)]>([])
    private let nextSubscription = Mutex(0)

    /// Creates an informer over `store` holding `kinds` (by default what the reconcilers and the gateway read).
    public init(store: any ObjectStore, logger: Logger, kinds: Set<String> = ReconcileTriggers.watchedKinds) {
        self.store = store
        self.logger = logger
        self.cache = ObjectCache(kinds: kinds, references: ReconcileTriggers.references)
    }

    /// Adds a subscriber; called from now on with every update, until `unsubscribe` with the returned id.
    @discardableResult
    public func subscribe(_ subscriber: @escaping @Sendable (InformerUpdate) -> Void) -> Int {
        let id = nextSubscription.withLock { next in
            defer { next += 1 }
            return next
        }
        subscribers.withLock { subscribers in
            if cache.hasSynced { subscriber(cache.contentAsUpdate()) }
            subscribers.append((id, subscriber))
        }
        return id
    }

    /// Removes a subscriber, e.g. the reconcilers of a leader's term that has ended.
    public func unsubscribe(_ id: Int) {
        subscribers.withLock { $0.removeAll { $0.id == id } }
    }

    /// Lists and watches until graceful shutdown or cancellation.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await Informer(store: self.store, cache: self.cache, logger: self.logger).run { update in
                self.subscribers.withLock { subscribers in
                    for subscriber in subscribers { subscriber.call(update) }
                }
            }
        }
    }
}
