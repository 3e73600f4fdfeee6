import Foundation
import Logging
import Resources

/// Keeps an `ObjectCache` in step with the store: lists, then watches from the list's revision, and lists again
/// whenever the watch fails (history compacted, watcher fell behind, stream ended).
///
/// After a re-list the cache is compared with what was listed and the differences are reported as changes, so
/// handlers miss nothing across the gap. Handlers are called on the informer's task, one change at a time and
/// in revision order; they should only enqueue keys.
public struct Informer: Sendable {
    /// The store watched.
    public let store: any ObjectStore
    /// The cache kept up to date.
    public let cache: ObjectCache
    /// The first delay before listing again after a failed list; it doubles up to `maximumRetryDelay`.
    public var retryDelay: Duration
    /// The longest delay between failed lists.
    public var maximumRetryDelay: Duration
    private let logger: Logger

    /// Creates an informer filling `cache` with the kinds it holds.
    public init(
        store: any ObjectStore, cache: ObjectCache, logger: Logger, retryDelay: Duration = .milliseconds(100),
        maximumRetryDelay: Duration = .seconds(5)
    ) {
        self.store = store
        self.cache = cache
        self.logger = logger
        self.retryDelay = retryDelay
        self.maximumRetryDelay = maximumRetryDelay
    }

    /// Lists and watches until the task is cancelled, calling `onChange` for each change applied to the cache.
    public func run(onChange: @Sendable (ObjectChange) -> Void) async {
        await run(onUpdate: { update in
            for change in update.changes { onChange(change) }
        })
    }

    /// Lists and watches until the task is cancelled, calling `onUpdate` after each list and each watch event, with
    /// what it changed in the cache and the revision the cache then reflects.
    public func run(onUpdate: @Sendable (InformerUpdate) -> Void) async {
        let backoff = Backoff(base: retryDelay, cap: maximumRetryDelay)
        var failures = 0
        while !Task.isCancelled {
            let revision: Int64
            do {
                revision = try await relist(onUpdate: onUpdate)
                failures = 0
            } catch {
                if Task.isCancelled { return }
                let delay = backoff.delay(attempt: failures)
                failures += 1
                logger.info(
                    "listing objects failed; retrying",
                    metadata: ["steady.error": "\(error)", "steady.retryDelay": "\(delay)"])
                try? await Task.sleep(for: delay)
                continue
            }
            var delivered = 0
            do {
                try await watch(from: revision, delivered: &delivered, onUpdate: onUpdate)
                if Task.isCancelled { return }
                logger.info("watch ended; re-listing", metadata: ["steady.revision": "\(cache.revision)"])
            } catch {
                if Task.isCancelled { return }
                logger.info(
                    "watch failed; re-listing",
                    metadata: ["steady.error": "\(error)", "steady.revision": "\(cache.revision)"])
            }
            if delivered == 0 {
                // A watch that fails at once would otherwise make list and watch spin.
                try? await Task.sleep(for: retryDelay)
            }
        }
    }

    /// Lists every watched kind at one revision and reconciles the cache with it; returns that revision.
    private func relist(onUpdate: @Sendable (InformerUpdate) -> Void) async throws -> Int64 {
        let (objects, revision) = try await store.list(kind: nil)
        let (changes, unreadable) = cache.replace(with: objects, revision: revision)
        for key in unreadable {
            logger.info(
                "skipping an unreadable object", metadata: ["steady.kind": "\(key.kind)", "steady.name": "\(key.name)"])
        }
        logger.debug(
            "listed objects",
            metadata: [
                "steady.revision": "\(revision)", "steady.objects": "\(objects.count)",
                "steady.changes": "\(changes.count)",
            ])
        onUpdate(InformerUpdate(changes: changes, revision: revision))
        return revision
    }

    /// Applies watch events until the stream ends, counting them in `delivered`.
    private func watch(
        from revision: Int64, delivered: inout Int, onUpdate: @Sendable (InformerUpdate) -> Void
    ) async throws {
        let events = try await store.watch(kind: nil, fromRevision: revision)
        for try await event in events {
            delivered += 1
            do {
                let change = try cache.apply(event)
                onUpdate(InformerUpdate(changes: change.map { [$0] } ?? [], revision: event.revision))
            } catch {
                logger.info(
                    "skipping an unreadable object",
                    metadata: [
                        "steady.kind": "\(event.object.kind)", "steady.name": "\(event.object.name)",
                        "steady.error": "\(error)",
                    ])
                onUpdate(InformerUpdate(changes: [], revision: event.revision))
            }
        }
    }
}
