/// Matches events with an expression and sends the matching ones, rendered by a template, to actions.
public struct RouteSpec: ResourceSpec, FieldDocumented {
    public struct Dedup: Codable, Sendable, Equatable, FieldDocumented {
        public var keys: [String]
        public var window: DurationString

        public static let fieldDescriptions = [
            "keys": "Expressions whose values identify duplicate events, e.g. input.SigMetadata.ID.",
            "window": "Events with the same keys within this window are delivered once.",
        ]
    }

    public struct Aggregate: Codable, Sendable, Equatable, FieldDocumented {
        public var count: Int?
        public var timeout: DurationString?

        public static let fieldDescriptions = [
            "count": "Deliver once this many events have gathered.",
            "timeout": "Deliver what has gathered after this long, even below count.",
        ]
    }

    /// Where the route's actions run.
    public struct Placement: Codable, Sendable, Equatable {
        public var runners: [String]?
        public var controllerActions: [String]?
        public var runnerActions: [String]?
        /// How many runners take part; `runners` lists at most the first 100 of them.
        public var runnerCount: Int?
        public var syncedRunners: Int?
        public init() {}
    }

    public struct Status: ResourceStatus {
        public var observedGeneration: Int64?
        public var conditions: [Condition]?
        public var placement: Placement?
        public var matchedEvents: Int64?
        public var lastMatchTime: String?
        /// Deliveries of the route's matches that reached their receiver, were given up, and are still due.
        public var delivered: Int64?
        public var failed: Int64?
        public var pending: Int64?
        /// With several controllers: each replica's pending deliveries (and failures in a row), by replica.
        public var replicas: [String: ReplicaDeliveries]?
        public init() {}
    }

    public static let kind = "Route"
    public static let plural = "routes"
    public static let shortNames = ["rt"]

    public var input: String?
    public var actions: [String]
    public var template: String?
    public var serializeActions: Bool?
    public var dedup: Dedup?
    public var aggregate: Aggregate?

    public init(
        input: String? = nil, actions: [String], template: String? = nil, serializeActions: Bool? = nil,
        dedup: Dedup? = nil, aggregate: Aggregate? = nil
    ) {
        self.input = input
        self.actions = actions
        self.template = template
        self.serializeActions = serializeActions
        self.dedup = dedup
        self.aggregate = aggregate
    }

    public func validate() -> [FieldError] {
        var errors = validateNameList(actions, at: "actions")
        if actions.isEmpty {
            errors.append(FieldError(path: "actions", reason: .required, message: "a route needs at least one action"))
        }
        if let template { errors += Names.validateObjectName(template, at: "template") }
        if let dedup, dedup.keys.isEmpty {
            errors.append(FieldError(path: "dedup.keys", reason: .required, message: "at least one key is required"))
        }
        if let aggregate {
            if aggregate.count == nil && aggregate.timeout == nil {
                errors.append(FieldError(path: "aggregate", reason: .required, message: "set count, timeout or both"))
            }
            if let count = aggregate.count, count < 1 {
                errors.append(FieldError(path: "aggregate.count", message: "must be at least 1"))
            }
        }
        return errors
    }

    public static let fieldDescriptions = [
        "input": "Expression over the event (input); empty matches every event. E.g. input.SigMetadata.ID == \"TRC-2\".",
        "actions": "Actions run for each matching event, in order when serializeActions is true.",
        "template": "Template that renders the event for the actions; the raw event when empty.",
        "serializeActions": "Run actions one after another instead of concurrently.",
        "dedup": "Drop repeated events with the same keys within a window.",
        "aggregate": "Gather events and deliver them together.",
    ]
}
