import Logging
import ServiceLifecycle

/// Services that only the elected leader runs (the reconcilers, the manifest sources, compaction), made afresh
/// for each term over that term's fenced store and stopped when the term ends.
public struct LeaderOnlyServices: Service {
    let elector: any LeaderElector
    let makeServices: @Sendable (any ObjectStore) -> [any Service]
    let logger: Logger

    /// - Parameter makeServices: Builds one term's services over the fenced store.
    public init(
        elector: any LeaderElector, logger: Logger,
        makeServices: @escaping @Sendable (any ObjectStore) -> [any Service]
    ) {
        self.elector = elector
        self.makeServices = makeServices
        self.logger = logger
    }

    public func run() async throws {
        let (makeServices, logger) = (makeServices, logger)
        try await cancelWhenGracefulShutdown {
            try await elector.run { store in
                logger.info("leading: starting the reconcilers and sources")
                await withTaskGroup(of: Void.self) { group in
                    for service in makeServices(store) {
                        group.addTask {
                            do {
                                try await service.run()
                            } catch {
                                logger.warning("a leader-only service failed", metadata: ["steady.error": "\(error)"])
                            }
                        }
                    }
                }
                logger.info("no longer leading: the reconcilers and sources have stopped")
            }
        }
    }
}
