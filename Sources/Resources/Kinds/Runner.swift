/// A host running the steady agent: its labels place routes and actions on it.
public struct RunnerSpec: ResourceSpec, FieldDocumented {
    public struct Schedule: Codable, Sendable, Equatable, FieldDocumented {
        public var interval: DurationString
        public var splay: DurationString?
        public var maxDuration: DurationString?

        public init(interval: DurationString, splay: DurationString? = nil, maxDuration: DurationString? = nil) {
            self.interval = interval
            self.splay = splay
            self.maxDuration = maxDuration
        }

        public static let fieldDescriptions = [
            "interval": "How often the agent runs its local run command.",
            "splay": "Largest deterministic delay added per runner, so that a fleet does not run at once.",
            "maxDuration": "A run still going after this long is stopped and reported failed.",
        ]
    }

    public struct Status: ResourceStatus {
        public var observedGeneration: Int64?
        public var conditions: [Condition]?
        public var agentVersion: String?
        public var hostname: String?
        public var lastHeartbeatTime: String?
        /// The slice revision the agent last reported as applied.
        public var observedSliceRevision: Int64?
        /// The slice revision the controller wants the agent to hold.
        public var desiredSliceRevision: Int64?
        public var assigned: Assigned?
        public var lastRun: RunSummary?

        public init() {}
    }

    /// What the controller placed on this runner.
    public struct Assigned: Codable, Sendable, Equatable {
        public var routes: [String]?
        public var actions: [String]?
        public var templates: [String]?
        public var secrets: [String]?
        public init(routes: [String]?, actions: [String]?, templates: [String]?, secrets: [String]?) {
            self.routes = routes
            self.actions = actions
            self.templates = templates
            self.secrets = secrets
        }
    }

    /// The outcome of the runner's latest scheduled run (`spec.schedule`), as its agent reported it.
    public struct RunSummary: Codable, Sendable, Hashable, FieldDocumented {
        /// What started a run on its own schedule.
        public static let scheduleTrigger = "schedule"

        public var phase: RemoteRunSpec.Phase?
        public var exitCode: Int?
        /// The signal that ended the process, when one did (a run over `maxDuration` ends with 15 or 9).
        public var signal: Int?
        public var startTime: String?
        public var completionTime: String?
        public var outputBytes: Int64?
        public var outputTruncated: Bool?
        public var reason: String?
        public var message: String?
        public var trigger: String?
        /// With several controllers: the API URL of the replica that holds this run's output (the one the agent
        /// reported it to). Set by that replica, whatever the agent sent.
        public var outputReplica: String?

        public init(
            phase: RemoteRunSpec.Phase? = nil, exitCode: Int? = nil, signal: Int? = nil, startTime: String? = nil,
            completionTime: String? = nil, outputBytes: Int64? = nil, outputTruncated: Bool? = nil,
            reason: String? = nil, message: String? = nil, trigger: String? = nil
        ) {
            self.phase = phase
            self.exitCode = exitCode
            self.signal = signal
            self.startTime = startTime
            self.completionTime = completionTime
            self.outputBytes = outputBytes
            self.outputTruncated = outputTruncated
            self.reason = reason
            self.message = message
            self.trigger = trigger
        }

        public static let fieldDescriptions = [
            "phase": "Running while the run goes; then Succeeded, Failed, TimedOut, Cancelled or Refused.",
            "exitCode": "The process's exit status, when it exited.",
            "signal": "The signal that ended the process, when one did.",
            "startTime": "When the process started.",
            "completionTime": "When the run ended.",
            "outputBytes": "Bytes the process wrote to stdout and stderr, kept or not.",
            "outputTruncated": "Whether the middle of the output was dropped to keep it within the limit.",
            "reason": "Why the run ended so, in CamelCase (Timeout, AgentRestarted, NoRunCommand, ...).",
            "message": "Details for a human.",
            "trigger": "What started the run: schedule.",
            "outputReplica": "With several controllers: the API URL of the replica holding this run's output.",
        ]
    }

    public static let kind = "Runner"
    public static let plural = "runners"
    public static let shortNames = ["rn"]
    public static let isSpecOptional = true

    public var schedule: Schedule?

    public init(schedule: Schedule? = nil) { self.schedule = schedule }

    public static let fieldDescriptions = ["schedule": "Optional scheduled runs of the agent's run command."]
}
