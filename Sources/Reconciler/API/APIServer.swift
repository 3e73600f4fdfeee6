import Crypto
import Events
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import Resources
import ServiceLifecycle
import TLSSupport

/// The Kubernetes-compatible HTTPS API: discovery, OpenAPI, objects, health and metrics.
public struct APIServer: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Nil serves plain HTTP, for in-process tests only.
        public var tls: TLSConfiguration?
        public var watchLimits: WatchLimits

        public init(host: String, port: Int, tls: TLSConfiguration?, watchLimits: WatchLimits = WatchLimits()) {
            self.host = host
            self.port = port
            self.tls = tls
            self.watchLimits = watchLimits
        }
    }

    public let objects: ObjectService
    public let authenticator: any Authenticating
    public let metrics: APIMetrics
    public let configuration: Configuration
    /// The agent protocol's endpoints, when the controller serves agents.
    public let agents: AgentGateway?
    public let caCertificatePEM: String
    /// The watches being served; `openWatches.closer` ends them on graceful shutdown.
    public let openWatches: OpenWatches
    /// What `/readyz` checks: whether the controller can serve (store open, informers synced).
    public let readiness: HealthChecks
    /// What `/livez` and `/healthz` check: whether the process works at all.
    public let liveness: HealthChecks
    /// RemoteRun output, served by the `log` subresource; nil serves no `log`.
    public let runOutput: RunOutputStore?
    /// Receives GitRepository webhooks; nil serves none.
    public let gitSources: (any GitSourceTriggering)?
    /// With several controller replicas: this one's URL and a way to the others, whose run output the `log`
    /// subresource reads through them.
    public let replicas: ReplicaPeers?
    /// The event pipeline that `POST /events` feeds; nil serves no intake.
    public let events: EventPipeline?
    let logger: Logger

    public init(
        objects: ObjectService, authenticator: any Authenticating, metrics: APIMetrics = APIMetrics(),
        events: EventPipeline? = nil, configuration: Configuration, agents: AgentGateway? = nil, caCertificatePEM: String = "",
        readiness: HealthChecks = HealthChecks(), liveness: HealthChecks = HealthChecks(),
        runOutput: RunOutputStore? = nil, gitSources: (any GitSourceTriggering)? = nil, replicas: ReplicaPeers? = nil,
        logger: Logger
    ) {
        self.replicas = replicas
        self.runOutput = runOutput
        self.gitSources = gitSources
        self.events = events
        self.readiness = readiness
        self.liveness = liveness
        self.agents = agents
        self.caCertificatePEM = caCertificatePEM
        self.objects = objects
        self.authenticator = authenticator
        self.metrics = metrics
        self.openWatches = OpenWatches(registry: metrics.registry)
        self.configuration = configuration
        self.logger = logger
    }

    /// The router with every path; tests drive it in-process.
    public func makeRouter() -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: StatusErrorMiddleware())
        router.add(middleware: AuthenticationMiddleware(authenticator: authenticator))
        readiness.register("/readyz", on: router)
        liveness.register("/livez", on: router)
        liveness.register("/healthz", on: router)
        router.get("/metrics") { _, _ in
            await metrics.collect()
            return APIResponses.text(metrics.render(), contentType: "text/plain; version=0.0.4")
        }
        router.get("/version") { _, _ in APIResponses.json(Discovery.version) }
        router.get("/api") { _, _ in APIResponses.json(Discovery.apiVersions) }
        router.get("/api/v1") { _, _ in APIResponses.json(Discovery.coreResourceList) }
        router.get("/apis") { _, _ in APIResponses.json(Discovery.groupList) }
        router.get("/apis/\(API.group)") { _, _ in APIResponses.json(Discovery.apiGroup) }
        router.get("/apis/\(API.group)/\(API.version)") { _, _ in APIResponses.json(Discovery.resourceList) }
        let openAPI = OpenAPI.groupVersionDocument()
        let openAPIHash = Hex.encode(SHA256.hash(data: openAPI.jsonData()).prefix(8), uppercase: true)
        router.get("/openapi/v3") { _, _ in APIResponses.json(OpenAPI.indexDocument(hash: openAPIHash)) }
        router.get("/openapi/v3/apis/\(API.group)/\(API.version)") { _, _ in APIResponses.json(openAPI) }
        router.get("/openapi/v2") { request, _ in
            if request.headers[.accept]?.contains("protobuf") == true {
                return Response(
                    status: .ok, headers: [.contentType: OpenAPI.swaggerProtobufMediaType],
                    body: .init(byteBuffer: ByteBuffer(bytes: OpenAPI.swaggerProtobuf())))
            }
            return APIResponses.json(OpenAPI.swaggerDocument())
        }
        ObjectRoutes(
            objects: objects, metrics: metrics, watchLimits: configuration.watchLimits, openWatches: openWatches
        ).register(on: router)
        if let gitSources { GitWebhookRoutes(objects: objects, sources: gitSources).register(on: router) }
        if let runOutput {
            RunLogRoutes(objects: objects, output: runOutput, metrics: metrics, replicas: replicas).register(on: router)
        }
        if let events {
            EventIntakeRoutes.register(on: router, paths: ["/events"], pipeline: events) { _, context in
                context.identity == .admin || context.identity == .eventIngest
            }
            ExecutionRoutes(pipeline: events).register(on: router)
            EventUpstreamRoutes(pipeline: events).register(on: router)
        }
        if let agents {
            AgentRoutes(gateway: agents, caCertificatePEM: caCertificatePEM).register(on: router)
        }
        return router
    }

    /// The HTTP application, served over TLS unless configured otherwise.
    public func makeApplication(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        throws -> some ApplicationProtocol
    {
        let server: HTTPServerBuilder
        if let tls = configuration.tls {
            // By ALPN: HTTP/2 or HTTP/1.1 for the API, and the agent stream for agents.
            let streams = agents.map { gateway in
                var server = AgentStreamServer(gateway: gateway, authenticator: authenticator)
                server.scheduledOutput = runOutput.map(ScheduledRunOutput.init(store:))
                return server
            }
            server = try ControllerChannel.builder(tlsConfiguration: tls, agentStreams: streams?.serve)
        } else {
            server = .http1()
        }
        return Application(
            router: makeRouter(), server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "steady"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}
