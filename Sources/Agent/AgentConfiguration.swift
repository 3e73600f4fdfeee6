import Foundation
import Resources

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What an agent is told at start: where the controller is, who it is, how to enrol and how often to report.
///
/// `steady agent` builds it from flags; `steady up` and the agent simulator build it directly.
public struct AgentConfiguration: Sendable {
    /// The version agents report.
    public static let defaultAgentVersion = "0.1.0"

    /// The controller's URL, `https://HOST:PORT`.
    public var controllerURL: String
    /// The runner name (DNS-1123).
    public var name: String
    /// Labels asked for at enrolment (labels declared on a Runner in manifests win).
    public var labels: [String: String]
    /// The join token, needed only when the agent has no identity yet.
    public var joinToken: AgentJoinToken?
    /// A ready identity (runner, credential, CA): enrolment is skipped. Wins over a stored one.
    public var identity: AgentIdentity?
    /// A CA certificate already trusted (for example, read from the controller's data directory in-process):
    /// enrolment trusts it and skips discovery.
    public var trustedCAPEM: String?
    /// Whether slices may hold `exec` actions, and RemoteRuns may run an explicit `command`.
    public var allowsExec: Bool
    /// The agent's own run command (`--run-command`, split into words; no shell), which RemoteRuns and schedules
    /// run; nil when not given.
    public var runCommand: [String]?
    /// How often to report when nothing else happens.
    public var heartbeatInterval: Duration
    /// How long the slice stream may stay silent (the controller sends a keep-alive every ~10 s) before the
    /// agent gives up on it and reconnects.
    public var streamIdleTimeout: Duration
    /// How long a plain request may take.
    public var requestTimeout: Duration
    /// The backoff between reconnections and enrolment attempts.
    public var backoff: ReconnectBackoff
    /// The host name reported.
    public var hostname: String
    /// The version reported.
    public var agentVersion: String
    /// Whether the agent gives back the file pages only its start-up touched, on its first heartbeat in sync
    /// (``ResidentPages``). For an agent that is a process of its own; off by default, since agents run in another
    /// program's process (tests, benchmarks) would advise that program's pages.
    public var releasesStartupPages = false

    /// Creates a configuration with the defaults: heartbeat every 5 s, reconnect after 35 s of silence, backoff
    /// 200 ms doubling to 30 s ±50%.
    public init(
        controllerURL: String,
        name: String,
        labels: [String: String] = [:],
        joinToken: AgentJoinToken? = nil,
        identity: AgentIdentity? = nil,
        trustedCAPEM: String? = nil,
        allowsExec: Bool = false,
        runCommand: [String]? = nil,
        heartbeatInterval: Duration = .seconds(5),
        streamIdleTimeout: Duration = .seconds(35),
        requestTimeout: Duration = .seconds(15),
        backoff: ReconnectBackoff = ReconnectBackoff(),
        hostname: String = AgentConfiguration.systemHostname(),
        agentVersion: String = AgentConfiguration.defaultAgentVersion
    ) {
        self.controllerURL = controllerURL
        self.name = name
        self.labels = labels
        self.joinToken = joinToken
        self.identity = identity
        self.trustedCAPEM = trustedCAPEM
        self.allowsExec = allowsExec
        self.runCommand = runCommand
        self.heartbeatInterval = heartbeatInterval
        self.streamIdleTimeout = streamIdleTimeout
        self.requestTimeout = requestTimeout
        self.backoff = backoff
        self.hostname = hostname
        self.agentVersion = agentVersion
    }

    /// Checks the name, labels and controller URL.
    ///
    /// - Throws: ``AgentError`` with code ``AgentError/Code/invalidConfiguration`` naming every problem.
    public func validate() throws(AgentError) {
        var problems: [String] = []
        // A token that names the controllers may stand for --controller.
        if !(controllerURL.isEmpty && joinToken?.controllers.isEmpty == false),
            let problem = Self.controllerURLProblem(controllerURL)
        {
            problems.append(problem)
        }
        let nameErrors = Names.validateObjectName(name, at: "--name")
        if !nameErrors.isEmpty { problems.append(ValidationFailure(nameErrors).description) }
        var labelErrors: [FieldError] = []
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            labelErrors += Names.validateLabel(key: key, value: value, at: "--labels")
        }
        if !labelErrors.isEmpty { problems.append(ValidationFailure(labelErrors).description) }
        if heartbeatInterval <= .zero { problems.append("--heartbeat-interval must be positive") }
        if let identity, identity.runner != name {
            problems.append("the identity is runner \(identity.runner), not \(name)")
        }
        guard problems.isEmpty else {
            throw AgentError(code: .invalidConfiguration, message: problems.joined(separator: "; "))
        }
    }

    /// The controllers to connect to, in order: `controllerURL` may list several, separated by commas, then those
    /// the join token names that it does not; the agent fails over from one to the next when it loses its connection.
    public var controllerURLs: [String] {
        Self.merged(Self.split(controllerURL), joinToken?.controllers ?? [])
    }

    /// `first`, then what `second` adds to it, in order.
    public static func merged(_ first: [String], _ second: [String]) -> [String] {
        var seen = Set(first)
        return first + second.filter { seen.insert($0).inserted }
    }

    static func split(_ text: String) -> [String] {
        text.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    /// What is wrong with a controller URL (or a comma-separated list of them), or nil: each must be
    /// `https://HOST[:PORT]` with no path but `/`. `source` names where the list came from in the message.
    public static func controllerURLProblem(_ text: String, source: String = "--controller") -> String? {
        let urls = split(text)
        guard !urls.isEmpty else { return "\(source) is empty; expected https://HOST:PORT[,https://HOST:PORT...]" }
        return urls.lazy.compactMap { singleControllerURLProblem($0, source: source) }.first
    }

    private static func singleControllerURLProblem(_ text: String, source: String) -> String? {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            return "\(source) \(text): not a URL; expected https://HOST:PORT"
        }
        guard scheme == "https" else {
            return "\(source) \(text): the scheme must be https (agents always use TLS)"
        }
        guard let host = components.host, !host.isEmpty else {
            return "\(source) \(text): no host; expected https://HOST:PORT"
        }
        guard components.path.isEmpty || components.path == "/", components.query == nil,
            components.fragment == nil, components.user == nil, components.password == nil
        else {
            return "\(source) \(text): give only https://HOST:PORT, without path, query or credentials"
        }
        return nil
    }

    /// Parses `k=v,k2=v2` (empty text gives no labels).
    public static func parseLabels(_ text: String) throws(AgentError) -> [String: String] {
        var labels: [String: String] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let pair = String(item).trimmingWhitespace()
            guard let equals = pair.firstIndex(of: "=") else {
                throw AgentError(
                    code: .invalidConfiguration, message: "--labels: \"\(pair)\" is not key=value")
            }
            let key = String(pair[..<equals])
            guard labels[key] == nil else {
                throw AgentError(code: .invalidConfiguration, message: "--labels: \(key) is given twice")
            }
            labels[key] = String(pair[pair.index(after: equals)...])
        }
        return labels
    }

    /// The machine's host name (`gethostname(2)`), or `localhost` when it has none.
    public static func systemHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }
}
