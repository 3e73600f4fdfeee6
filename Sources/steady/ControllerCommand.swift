import AgentCLI
import ArgumentParser
import Client
import Events
import Foundation
import Logging
import Reconciler
import Resources
import ServiceLifecycle

/// `steady controller`: the API server, the store and the reconcilers, in one process.
struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
        abstract: "Run the controller: the HTTPS API, the embedded store and the reconcilers.")

    @OptionGroup var options: ControllerOptions

    func run() async throws {
        let logger = makeLogger(level: options.logLevel)
        try await options.runController(logger: logger, extraServices: { _ in [] })
    }
}

/// The flags shared by `steady controller` and `steady up`.
struct ControllerOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Directory for the store, the CA and the admin credentials.")
    var dataDirectory = ".steady"

    @Option(help: "Address and port to serve the API on.")
    var listen = "127.0.0.1:7443"

    @Option(help: "A directory of manifests to apply, watch and prune.")
    var manifests: String?

    @Option(name: .customLong("git"), help: "A Git repository to apply and follow (GitRepository \"git\").")
    var gitURL: String?

    @Option(name: .customLong("git-ref"), help: "The branch of --git to follow (its default branch otherwise).")
    var gitRef: String?

    @Option(name: .customLong("git-path"), help: "The directory of manifests inside --git (the root otherwise).")
    var gitPath: String?

    @Option(name: .customLong("server-name"), help: "Extra DNS name or IP for the serving certificate (repeatable).")
    var serverNames: [String] = []

    @Option(
        name: .customLong("advertise-url"),
        help: """
            With several controllers (--store etcd://...): the https://HOST:PORT other replicas reach this one's API \
            on (the first --server-name, else the --listen address, else the host name, with the port).
            """)
    var advertiseURL: String?

    @Flag(help: "Sync every commit to disk (survives power loss, not just a crash).")
    var fsync = false

    @Option(help: "trace, debug, info, notice, warning or error.")
    var logLevel: Logger.Level = .info

    @Option(name: .customLong("events-listen"), help: "Also take events on this plain HTTP address (POST / and /events).")
    var eventsListen: String?

    @Option(name: .customLong("events-token-file"), help: "Bearer token required on --events-listen (a file).")
    var eventsTokenFile: String?

    @Option(name: .customLong("events-tls-cert"), help: "Serve --events-listen over TLS with this certificate (PEM).")
    var eventsTLSCertificate: String?

    @Option(name: .customLong("events-tls-key"), help: "The private key (PEM) for --events-tls-cert.")
    var eventsTLSKey: String?

    @Flag(name: .customLong("allow-exec"), help: "Let exec actions run on the controller.")
    var allowExec = false

    @Option(name: .customLong("events-max-bytes"), help: "Largest event accepted, in bytes (413 above it).")
    var eventsMaxBytes = 1 << 20

    @Option(name: .customLong("events-max-queued"), help: "Events queued before intake answers 429.")
    var eventsMaxQueued = 10_000

    @Option(name: .customLong("events-max-pending"), help: "Deliveries pending before intake answers 429.")
    var eventsMaxPending = 100_000

    @Option(
        name: .customLong("agent-credential-ttl"),
        help: "How long an agent credential lasts (agents rotate it after two thirds); 0 for no expiry.")
    var agentCredentialTTL = "720h"

    @OptionGroup var storeOptions: StoreOptions

    /// `--agent-credential-ttl`, checked; nil for no expiry.
    func credentialTTL() throws -> Duration? {
        let parsed: DurationString
        do {
            parsed = try DurationString(agentCredentialTTL)
        } catch {
            throw ValidationError("--agent-credential-ttl: \(error.message)")
        }
        guard parsed.seconds > 0 else { return nil }
        guard parsed.seconds >= 1 else { throw ValidationError("--agent-credential-ttl: at least 1s, or 0") }
        return parsed.duration
    }

    func validate() throws {
        _ = try endpoint()
        if let advertiseURL, let problem = ReplicaPeers.urlProblem(advertiseURL) {
            throw ValidationError("--advertise-url \(advertiseURL): \(problem)")
        }
        if let gitURL {
            let errors = GitSourceController.declaration(url: gitURL, branch: gitRef, path: gitPath).errors
            if let error = errors.first { throw ValidationError("--git: \(error)") }
        } else if gitRef != nil || gitPath != nil {
            throw ValidationError("--git-ref and --git-path need --git URL")
        }
        _ = try eventListener()
        _ = try credentialTTL()
        if let manifests {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: manifests, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--manifests \(manifests): no such directory")
            }
        }
    }

    func endpoint() throws -> (host: String, port: Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw ValidationError("--listen \(listen): expected HOST:PORT, e.g. 127.0.0.1:7443")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// The `--events-listen` configuration, checked; nil without the flag.
    func eventListener() throws -> EventListener.Configuration? {
        guard let eventsListen else { return nil }
        do {
            return try EventListener.Configuration.fromFlags(
                listen: eventsListen, tokenFile: eventsTokenFile, tlsCertificate: eventsTLSCertificate,
                tlsKey: eventsTLSKey)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// The serving certificate's extra names: `--server-name`, and the host of `--advertise-url`, which the other
    /// replicas verify.
    var servingNames: [String] {
        guard let host = advertiseURL.flatMap({ URLComponents(string: $0)?.host }) else { return serverNames }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return serverNames.contains(bare) ? serverNames : serverNames + [bare]
    }

    var dataURL: URL { URL(fileURLWithPath: dataDirectory).standardizedFileURL }
    var kubeconfigURL: URL { dataURL.appendingPathComponent("admin.kubeconfig") }

    /// Runs the controller until SIGTERM or SIGINT, with `extraServices` (given the bound port) beside it.
    func runController(
        logger: Logger, extraServices: @escaping @Sendable (ControllerRuntime) throws -> [any Service],
        onReady: @escaping @Sendable (ControllerRuntime, Int) async -> Void = { _, _ in }
    ) async throws {
        MallocArenas.limit()
        let (host, port) = try endpoint()
        var configuration = ControllerRuntime.Configuration(
            dataDirectory: dataURL, host: host, port: port,
            manifestsDirectory: manifests.map { URL(fileURLWithPath: $0).standardizedFileURL },
            serverNames: servingNames, synchronous: fsync ? .full : .normal, eventListener: try eventListener(),
            events: EventPipeline.Configuration(
                location: "controller", allowsExec: allowExec, maxEventBytes: eventsMaxBytes,
                maxQueuedEvents: eventsMaxQueued, maxPendingDeliveries: eventsMaxPending),
            advertiseURL: advertiseURL)
        configuration.agentCredentialTTL = try credentialTTL()
        let runtime = try await storeOptions.makeRuntime(configuration: configuration, logger: logger)
        if let gitURL {
            try await runtime.gitSources.declare(
                GitSourceController.declaration(url: gitURL, branch: gitRef, path: gitPath).object)
        }
        let kubeconfig = kubeconfigURL
        let services = try runtime.services { boundPort in
            let clientHost = ["0.0.0.0", "::", "*"].contains(host) ? "127.0.0.1" : host
            let server = "https://\(clientHost.contains(":") ? "[\(clientHost)]" : clientHost):\(boundPort)"
            do {
                try Kubeconfig.make(server: server, caPEM: runtime.identity.caCertificatePEM, token: runtime.identity.adminToken)
                    .write(to: kubeconfig)
                logger.info(
                    "controller ready",
                    metadata: ["steady.server": "\(server)", "steady.kubeconfig": "\(kubeconfig.path)"])
            } catch {
                logger.error("cannot write the admin kubeconfig", metadata: ["steady.error": "\(error)"])
            }
            await onReady(runtime, boundPort)
        } + extraServices(runtime)
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        runtime.store.close()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A logger writing to standard error, set up once per process.
func makeLogger(level: Logger.Level) -> Logger {
    makeStandardErrorLogger(label: "steady", level: level)
}
