import Events
import Foundation
import Logging
import Prometheus
import Resources
import SQLiteSupport
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
        /// The plain events port (`--events-listen`), if any.
        public var eventListener: EventListener.Configuration?
        /// The event pipeline's limits, and whether `exec` actions may run on the controller (`--allow-exec`).
        public var events: EventPipeline.Configuration
        /// With several controllers: the URL other replicas reach this one's API on (`--advertise-url`); by default
        /// ``ReplicaPeers/defaultURL(serverNames:listenHost:port:hostName:)`` once the port is bound.
        public var advertiseURL: String?
        /// How long an agent credential lasts (`--agent-credential-ttl`); agents rotate theirs after two thirds of
        /// it. Nil: credentials never expire.
        public var agentCredentialTTL: Duration? = AgentCredentials.defaultTTL

        public init(
            dataDirectory: URL, host: String = "127.0.0.1", port: Int = 7443, manifestsDirectory: URL? = nil,
            serverNames: [String] = [], synchronous: SQLiteStore.Synchronous = .normal,
            eventListener: EventListener.Configuration? = nil,
            events: EventPipeline.Configuration = .init(location: "controller"), advertiseURL: String? = nil
        ) {
            self.advertiseURL = advertiseURL
            self.eventListener = eventListener
            self.events = events
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
    /// With an elector: this replica's advertised URL and a client to the others (run output they hold).
    public let replicas: ReplicaPeers?
    /// Fetches and applies GitRepository sources (run as it is by a lone controller; with an elector, only
    /// ``leaderGitSources`` runs, and this one serves ``GitSourceController/declare(_:)``).
    public let gitSources: GitSourceController
    /// With an elector: the GitRepository sources that this replica follows while it leads.
    let leaderGitSources: LeaderGitSources?
    /// The event pipeline: intake, routing, the outbox and execution records (`events.db`).
    public let events: EventPipeline
    let eventTable: EventTableSource
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
        try self.init(configuration: configuration, identity: identity, store: store, logger: logger)
    }

    /// Builds the controller on an identity and a store the caller has already set up (SQLite, etcd or another).
    ///
    /// With an `elector`, several replicas may share the store: every replica serves the API and agent streams.
    public init(
        configuration: Configuration, identity: ControllerIdentity, store: any ObjectStore,
        elector: (any LeaderElector)? = nil, logger: Logger
    ) throws {
        self.configuration = configuration
        self.elector = elector
        self.logger = logger
        self.identity = identity
        for change in identity.changes { logger.info("\(change)") }
        self.store = store
        objects = ObjectService(store: store)
        metrics = APIMetrics()
        let credentials = AgentCredentials(
            store: store, adminToken: identity.adminToken, ttl: configuration.agentCredentialTTL)
        informer = SharedInformer(store: store, logger: logger)
        let replicas =
            elector == nil
            ? nil
            : ReplicaPeers(
                url: configuration.advertiseURL, fetcher: try HTTPReplicaFetcher(caPEM: identity.caCertificatePEM))
        self.replicas = replicas
        agents = AgentGateway(
            objects: objects, credentials: credentials, metrics: metrics.gateway, informer: informer,
            replicas: replicas, logger: logger)
        controllers = ControllerManager(
            objects: objects, metrics: metrics, logger: logger, syncIndex: agents.syncIndex, informer: informer)
        runOutput = RunOutputStore(directory: configuration.dataDirectory.appendingPathComponent("run-output"))
        remoteRuns = RunDispatcher(
            objects: objects, gateway: agents, informer: informer, output: runOutput, replicas: replicas,
            logger: logger)
        let gitDirectory = configuration.dataDirectory.appendingPathComponent("git")
        gitSources = GitSourceController(objects: objects, directory: gitDirectory, logger: logger)
        leaderGitSources =
            elector == nil ? nil : LeaderGitSources(objects: objects, directory: gitDirectory, logger: logger)
        events = EventPipeline(
            configuration: configuration.events,
            store: try EventStore(
                path: configuration.dataDirectory.appendingPathComponent("events.db").path,
                fullSync: configuration.synchronous == .full),
            httpClient: EventPipeline.sharedHTTPClient, metrics: EventMetrics(registry: metrics.registry), logger: logger)
        eventTable = EventTableSource(informer: informer, pipeline: events, logger: logger)
        server = APIServer(
            objects: objects, authenticator: credentials, metrics: metrics, events: events,
            configuration: .init(host: configuration.host, port: configuration.port, tls: identity.tlsConfiguration),
            agents: agents, caCertificatePEM: identity.caCertificatePEM,
            readiness: Self.readiness(store: store, controllers: controllers),
            liveness: Self.liveness(store: store), runOutput: runOutput,
            gitSources: leaderGitSources ?? gitSources, replicas: replicas, logger: logger)
        let (controllers, gateway, cache) = (controllers, metrics.gateway, controllers.cache)
        metrics.addCollector { controllers.collectQueueDepths() }
        metrics.addCollector { gateway.setRunnerConditions(of: cache.objects(kind: RunnerSpec.kind).values) }
        // SQLite's page caches are most of what a busy controller's heap grows by, up to their `cache_size`.
        let sqliteMemory = metrics.registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "steady", subsystem: "sqlite", metricName: "memory", unitName: "bytes",
                helpText: "Memory SQLite holds (page caches of the store and events.db, statements)."))
        metrics.addCollector { sqliteMemory.set(SQLiteMemory.used) }
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

    /// This replica's name among several controllers: its host and data directory, which hold its own events.db.
    var replicaName: String { "\(ProcessInfo.processInfo.hostName):\(configuration.dataDirectory.path)" }

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
            gitSources,
            events,
            eventTable,
            EventStatusWriter(pipeline: events, objects: objects, logger: logger),
        ]
        if let listener = configuration.eventListener {
            let logger = logger
            services.append(
                try EventServer(configuration: listener, pipeline: events) { port in
                    logger.info("events listening", metadata: ["steady.events.port": "\(port)"])
                })
        }
        if let directory = configuration.manifestsDirectory {
            services.append(ManifestDirectorySource(directory: directory, objects: objects, logger: logger))
        }
        return services
    }

    /// One replica's services: the API, the informer, the run dispatcher and the agent gateway everywhere; the
    /// reconcilers, the manifest and Git sources and compaction only while this replica leads.
    private func replicaServices(
        elector: any LeaderElector, onServerRunning: @escaping @Sendable (Int) async -> Void
    ) throws -> [any Service] {
        let (configuration, logger, metrics, compiled) = (configuration, logger, metrics, objects.compiled)
        let (informer, syncIndex, gitSources, replicas) = (informer, agents.syncIndex, leaderGitSources, replicas)
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
            if let gitSources { services.append(gitSources.termService(objects: objects)) }
            return services
        }
        // Every replica takes events into its own events.db, delivers them, and adds its own counts to Route and
        // Action status (EventStatusWriter says how replicas' figures merge).
        var services: [any Service] = [
            try server.makeApplication { port in
                replicas?.adopt(
                    defaultURL: ReplicaPeers.defaultURL(
                        serverNames: configuration.serverNames, listenHost: configuration.host, port: port,
                        hostName: ProcessInfo.processInfo.hostName))
                logger.info("replica advertised", metadata: ["steady.url": "\(replicas?.url ?? "")"])
                await onServerRunning(port)
            },
            server.openWatches.closer,
            informer,
            leaderOnly,
            remoteRuns,
            agents,
            events,
            eventTable,
            EventStatusWriter(pipeline: events, objects: objects, replica: replicaName, logger: logger),
        ]
        if let listener = configuration.eventListener {
            services.append(
                try EventServer(configuration: listener, pipeline: events) { port in
                    logger.info("events listening", metadata: ["steady.events.port": "\(port)"])
                })
        }
        return services
    }
}
