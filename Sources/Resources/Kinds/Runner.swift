/// A host running the steady agent: its labels place routes and actions on it.
public struct RunnerSpec: ResourceSpec, FieldDocumented {
    public struct Schedule: Codable, Sendable, Equatable, FieldDocumented {
        public var interval: DurationString
        public var splay: DurationString?
        public var maxDuration: DurationString?

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

    /// The outcome of the runner's latest scheduled or remote run.
    public struct RunSummary: Codable, Sendable, Equatable {
        public var startTime: String?
        public var completionTime: String?
        public var exitCode: Int?
        public var trigger: String?
    }

    public static let kind = "Runner"
    public static let plural = "runners"
    public static let shortNames = ["rn"]
    public static let isSpecOptional = true

    public var schedule: Schedule?

    public init(schedule: Schedule? = nil) { self.schedule = schedule }

    public static let fieldDescriptions = ["schedule": "Optional scheduled runs of the agent's run command."]
}
