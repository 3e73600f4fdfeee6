import Logging
import ServiceLifecycle

/// Drops old store history on an interval, as Kubernetes compacts etcd, keeping a window for watch resumes.
public struct CompactionService: Service {
    let store: any ObjectStore
    let interval: Duration
    let keepRevisions: Int64
    let logger: Logger

    public init(store: any ObjectStore, interval: Duration = .seconds(300), keepRevisions: Int64 = 100_000, logger: Logger) {
        self.store = store
        self.interval = interval
        self.keepRevisions = keepRevisions
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await compactPeriodically() }
    }

    private func compactPeriodically() async throws {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            do {
                let revision = try await store.compact(keepingRevisions: keepRevisions)
                logger.debug("store compacted", metadata: ["steady.revision": "\(revision)"])
            } catch {
                logger.warning("store compaction failed", metadata: ["steady.error": "\(error)"])
            }
        }
    }
}
