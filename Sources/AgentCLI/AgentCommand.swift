import Agent
import ArgumentParser
import Events
import Foundation
import Logging
import Resources
import ServiceLifecycle

/// `steady agent` (and `steady-agent`): a runner agent that enrols with a controller, follows its slice and reports.
public struct AgentCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run a runner agent: enrol with the controller, follow this runner's slice, report status.",
        discussion: """
            The first start needs a join token (`steady token create`): the agent checks the controller's CA against \
            the hash in the token, enrols, and stores its own credential in the state directory. Later starts use \
            that credential; the token is then not needed. The last good slice is kept in the state directory and \
            served while the controller is away.
            """)

    @Option(
        help: """
            The controller's URL, https://HOST:PORT; several controllers of one cluster as a comma-separated list, \
            to fail over from one to the next. May be left out when the join token names the controllers.
            """)
    var controller: String = ""

    @Option(
        name: .customLong("join-token"),
        help: ArgumentHelp(
            "The join token, <CA-hash>::<id>.<secret>; only needed to enrol. Also read from STEADY_JOIN_TOKEN.",
            valueName: "token"))
    var joinToken: String?

    @Option(help: "The runner name (DNS-1123: lowercase letters, digits, '-' and '.').")
    var name: String

    @Option(help: "Labels for a new Runner, k=v,k2=v2 (labels declared in manifests win).")
    var labels: String = ""

    @Option(name: .customLong("state-dir"), help: "Where the credential, the CA and the last good slice are kept.")
    var stateDirectory = "/var/lib/steady-agent"

    @Flag(name: .customLong("allow-exec"), help: "Accept slices holding exec actions (refused by default).")
    var allowExec = false

    @Option(
        name: .customLong("run-command"),
        help: "The command RemoteRuns run on this host, split into words (no shell), e.g. \"/usr/bin/rudder agent run\".")
    var runCommand: String?

    @Option(name: .customLong("heartbeat-interval"), help: "How often to report to the controller, e.g. 5s.")
    var heartbeatInterval = "5s"

    @Option(help: "trace, debug, info, notice, warning or error.")
    var logLevel = "info"

    @Option(
        name: .customLong("events-listen"),
        help: "Take events on this address (POST / and /events, Postee-compatible), e.g. 127.0.0.1:8082.")
    var eventsListen: String?

    @Option(name: .customLong("events-token-file"), help: "Bearer token required on --events-listen (a file).")
    var eventsTokenFile: String?

    @Option(name: .customLong("events-tls-cert"), help: "Serve --events-listen over TLS with this certificate (PEM).")
    var eventsTLSCertificate: String?

    @Option(name: .customLong("events-tls-key"), help: "The private key (PEM) for --events-tls-cert.")
    var eventsTLSKey: String?

    /// `--log-level` as a level (checked by `validate()`).
    private var level: Logger.Level? { Logger.Level(rawValue: logLevel) }

    /// Creates the command with no flags set; ArgumentParser fills them in.
    public init() {}

    /// The token from the flag or the environment (the environment keeps it out of `ps`).
    private var tokenText: String? {
        if let joinToken, !joinToken.isEmpty { return joinToken }
        if let value = ProcessInfo.processInfo.environment["STEADY_JOIN_TOKEN"], !value.isEmpty { return value }
        return nil
    }

    public func validate() throws {
        guard level != nil else {
            throw ValidationError("--log-level: \"\(logLevel)\" is not trace, debug, info, notice, warning or error")
        }
        _ = try makeConfiguration()
        _ = try eventListener()
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

    func makeConfiguration() throws -> AgentConfiguration {
        do {
            let heartbeat: Duration
            do {
                let parsed = try DurationString(heartbeatInterval)
                heartbeat = parsed.duration
            } catch {
                throw ValidationError("--heartbeat-interval: \(error.message)")
            }
            var configuration = AgentConfiguration(
                controllerURL: controller, name: name, labels: try AgentConfiguration.parseLabels(labels),
                joinToken: try tokenText.map { text throws(AgentError) in try AgentJoinToken(parsing: text) },
                allowsExec: allowExec, runCommand: try runCommand.map { text throws(AgentError) in
                    try RunCommandLine.split(text)
                }, heartbeatInterval: heartbeat)
            try configuration.validate()
            // An agent process of its own: its start-up pages are its own to give back.
            configuration.releasesStartupPages = true
            return configuration
        } catch let error as AgentError {
            throw ValidationError(error.message)
        }
    }

    public func run() async throws {
        AgentProcessSettings.apply(takesEvents: eventsListen != nil)
        let logger = makeStandardErrorLogger(label: "steady-agent", level: level ?? .info)
        let configuration = try makeConfiguration()
        do {
            let directory = try AgentStateDirectory(path: stateDirectory)
            if directory.permissions & 0o077 != 0 {
                logger.warning(
                    "the state directory is readable by others; restrict it to its owner (chmod 700)",
                    metadata: ["steady.stateDir": "\(directory.path)"])
            }
            if configuration.joinToken == nil, try directory.loadIdentity() == nil {
                throw AgentError(
                    code: .invalidConfiguration,
                    message: "\(directory.path) holds no credential yet: give --join-token to enrol "
                        + "(create one with `steady token create`)")
            }
            let agent = Agent(configuration: configuration, stateDirectory: directory, logger: logger)
            logger.info(
                "agent starting",
                metadata: [
                    "steady.controller": "\(configuration.controllerURL)", "steady.stateDir": "\(directory.path)",
                    "steady.allowExec": "\(configuration.allowsExec)",
                ])
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: agent)]
            if let listener = try eventListener() {
                let fixedIdentity = configuration.identity
                let events = try AgentEvents(
                    configuration: configuration, state: agent.state, directory: directory.path, listener: listener,
                    identity: { fixedIdentity ?? (try? directory.loadIdentity()) ?? nil }, logger: logger)
                services.append(.init(service: events))
            }
            let group = ServiceGroup(
                configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
            logger.info("agent stopped")
        } catch let error as AgentError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        }
    }

}

/// A logger writing to standard error at `level`, set up once per process (by `steady` and `steady-agent` alike).
public func makeStandardErrorLogger(label: String, level: Logger.Level) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: label)
    logger.logLevel = level
    return logger
}
