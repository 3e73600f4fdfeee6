import Foundation
import Logging
import Resources
import ServiceLifecycle

/// Everything one controller process runs: identity, store, API server, manifests source, compaction.
public struct ControllerRuntime: Sendable {
    public struct Configuration: Sendable {
        public var dataDirectory: URL
        public var host: String
        public var port: Int
        public var manifestsDirectory: URL?
        /// Extra DNS names or IPs for the serving certificate.
        public var serverNames: [String]
        public var synchronous: SQLiteStore.Synchronous

        public init(
            dataDirectory: URL, host: String = "127.0.0.1", port: Int = 7443, manifestsDirectory: URL? = nil,
            serverNames: [String] = [], synchronous: SQLiteStore.Synchronous = .normal
        ) {
            self.dataDirectory = dataDirectory
            self.host = host
            self.port = port
            self.manifestsDirectory = manifestsDirectory
            self.serverNames = serverNames
            self.synchronous = synchronous
        }
    }

    public let configuration: Configuration
    public let identity: ControllerIdentity
    /// The store every part of the controller reads and writes: SQLite by default, or a shared one such as etcd.
    public let store: any ObjectStore
    public let objects: ObjectService
    public let metrics: APIMetrics
    public let server: APIServer
    public let agents: AgentGateway
    /// The one list and watch of the store that the reconcilers and the agent gateway share.
    public let informer: SharedInformer
    /// The reconcilers; `/readyz` fails until the informer has synced.
    public let controllers: ControllerManager
    /// Carries RemoteRuns out over the agents' streams.
    public let remoteRuns: RunDispatcher
    /// Run output, outside the RemoteRun objects (the `log` subresource).
    public let runOutput: RunOutputStore
    /// When set, the reconcilers, the manifest source and compaction run only on the elected leader, each term
    /// over a fenced store; without one this process is the only controller.
    public let elector: (any LeaderElector)?
    let logger: Logger

    /// Loads or creates the controller's identity and opens its SQLite store under the data directory.
    public init(configuration: Configuration, logger: Logger) throws {
        let identity = try ControllerIdentity.loadOrCreate(
            dataDirectory: configuration.dataDirectory, serverName: configuration.serverNames,
            listenHost: configuration.host)
        let store = try SQLiteStore(
            path: configuration.dataDirectory.appendingPathComponent("state.db").path,
            synchronous: configuration.synchronous)
        self.init(configuration: configuration, identity: identity, store: store, logger: logger)
    }

    /// Builds the controller on an identity and a store the caller has already set up (SQLite, etcd or another).
    ///
    /// With an `elector`, several replicas may share the store: every replica serves the API and agent streams.
    public init(
        configuration: Configuration, identity: ControllerIdentity, store: any ObjectStore,
        elector: (any LeaderElector)? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.elector = elector
        self.logger = logger
        self.identity = identity
        for change in identity.changes { logger.info("\(change)") }
        self.store = store
        objects = ObjectService(store: store)
        metrics = APIMetrics()
        let credentials = AgentCredentials(store: store, adminToken: identity.adminToken)
        informer = SharedInformer(store: store, logger: logger)
        agents = AgentGateway(
            objects: objects, credentials: credentials, metrics: metrics.gateway, informer: informer, logger: logger)
        controllers = ControllerManager(
            objects: objects, metrics: metrics, logger: logger, syncIndex: agents.syncIndex, informer: informer)
        runOutput = RunOutputStore(directory: configuration.dataDirectory.appendingPathComponent("run-output"))
        remoteRuns = RunDispatcher(
            objects: objects, gateway: agents, informer: informer, output: runOutput, logger: logger)
        server = APIServer(
            objects: objects, authenticator: credentials, metrics: metrics,
            configuration: .init(host: configuration.host, port: configuration.port, tls: identity.tlsConfiguration),
            agents: agents, caCertificatePEM: identity.caCertificatePEM,
            readiness: Self.readiness(store: store, controllers: controllers),
            liveness: Self.liveness(store: store), runOutput: runOutput, logger: logger)
        let (controllers, gateway, cache) = (controllers, metrics.gateway, controllers.cache)
        metrics.addCollector { controllers.collectQueueDepths() }
        metrics.addCollector { gateway.setRunnerConditions(of: cache.objects(kind: RunnerSpec.kind).values) }
    }

    /// Ready when the store answers and the informer has listed everything once.
    static func readiness(store: any ObjectStore, controllers: ControllerManager) -> HealthChecks {
        var checks = liveness(store: store)
        let cache = controllers.cache
        checks.add("informers") {
            guard cache.hasSynced else { throw HealthChecks.Failure("the informer has not listed the store yet") }
        }
        return checks
    }

    /// Alive while the store answers.
    static func liveness(store: any ObjectStore) -> HealthChecks {
        var checks = HealthChecks()
        checks.add("store") { _ = try await store.currentRevision() }
        return checks
    }

    /// The services to run in one ServiceGroup; `onServerRunning` receives the bound port.
    public func services(onServerRunning: @escaping @Sendable (Int) async -> Void) throws -> [any Service] {
        if let elector {
            return try replicaServices(elector: elector, onServerRunning: onServerRunning)
        }
        var services: [any Service] = [
            try server.makeApplication(onServerRunning: onServerRunning),
            server.openWatches.closer,
            CompactionService(store: store, logger: logger),
            informer,
            controllers,
            remoteRuns,
            agents,
        ]
        if let directory = configuration.manifestsDirectory {
            services.append(ManifestDirectorySource(directory: directory, objects: objects, logger: logger))
        }
        return services
    }

    /// One replica's services: the API, the informer, the run dispatcher and the agent gateway everywhere; the
    /// reconcilers, the manifest source and compaction only while this replica leads.
    private func replicaServices(
        elector: any LeaderElector, onServerRunning: @escaping @Sendable (Int) async -> Void
    ) throws -> [any Service] {
        let (configuration, logger, metrics, compiled) = (configuration, logger, metrics, objects.compiled)
        let (informer, syncIndex) = (informer, agents.syncIndex)
        let leaderOnly = LeaderOnlyServices(elector: elector, logger: logger) { store in
            let objects = ObjectService(store: store, compiled: compiled)
            var services: [any Service] = [
                CompactionService(store: store, logger: logger),
                ControllerManager(
                    objects: objects, metrics: metrics, logger: logger, syncIndex: syncIndex, informer: informer),
            ]
            if let directory = configuration.manifestsDirectory {
                services.append(ManifestDirectorySource(directory: directory, objects: objects, logger: logger))
            }
            return services
        }
        return [
            try server.makeApplication(onServerRunning: onServerRunning),
            server.openWatches.closer,
            informer,
            leaderOnly,
            remoteRuns,
            agents,
        ]
    }
}
