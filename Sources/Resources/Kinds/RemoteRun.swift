/// Asks a set of runners to run their local run command now and collects each one's result.
public struct RemoteRunSpec: ResourceSpec, FieldDocumented {
    public struct Target: Codable, Sendable, Equatable, FieldDocumented {
        public var all: Bool?
        public var runners: [String]?
        public var runnerSelector: LabelSelector?

        public static let fieldDescriptions = [
            "all": "Every runner.", "runners": "Runners by name.", "runnerSelector": "Runners by labels.",
        ]
    }

    public enum Phase: String, SchemaEnum {
        case pending = "Pending"
        case running = "Running"
        case succeeded = "Succeeded"
        case failed = "Failed"
        case timedOut = "TimedOut"
        case skipped = "Skipped"
    }

    public struct RunnerResult: Codable, Sendable, Equatable {
        public var runner: String
        public var phase: Phase
        public var exitCode: Int?
        public var startTime: String?
        public var completionTime: String?
        public var outputBytes: Int64?
        public var message: String?

        public init(runner: String, phase: Phase) {
            self.runner = runner
            self.phase = phase
        }
    }

    public struct Counts: Codable, Sendable, Equatable {
        public var total: Int?
        public var pending: Int?
        public var running: Int?
        public var succeeded: Int?
        public var failed: Int?

        public init(total: Int, pending: Int, running: Int, succeeded: Int, failed: Int) {
            (self.total, self.pending, self.running, self.succeeded, self.failed) = (total, pending, running, succeeded, failed)
        }
    }

    public struct Status: ResourceStatus {
        public var observedGeneration: Int64?
        public var conditions: [Condition]?
        public var phase: Phase?
        public var counts: Counts?
        public var results: [RunnerResult]?
        public var startTime: String?
        public var completionTime: String?
        public init() {}
    }

    public static let kind = "RemoteRun"
    public static let plural = "remoteruns"
    public static let shortNames = ["rr"]
    /// Conditions (CFEngine classes in Rudder) are passed to the run command, so they are restricted.
    public static let conditionPattern = "^[A-Za-z0-9][A-Za-z0-9_]*$"

    public var target: Target
    public var conditions: [String]?
    public var keepOutput: Bool?
    public var asynchronous: Bool?
    public var timeout: DurationString?
    public var batchSize: CountOrPercent?
    public var ttlSecondsAfterFinished: Int?

    public init(target: Target, conditions: [String]? = nil) {
        self.target = target
        self.conditions = conditions
    }

    public static func isValidCondition(_ condition: String) -> Bool {
        guard let first = condition.unicodeScalars.first, condition.utf8.count <= 1024 else { return false }
        func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
            scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar))
        }
        return isAlphanumeric(first) && condition.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "_" }
    }

    public func validate() -> [FieldError] {
        var errors: [FieldError] = []
        let chosen = [target.all == true, target.runners != nil, target.runnerSelector != nil].filter { $0 }.count
        if chosen != 1 {
            errors.append(
                FieldError(path: "target", reason: .required, message: "set exactly one of all: true, runners or runnerSelector"))
        }
        if let runners = target.runners, runners.isEmpty {
            errors.append(FieldError(path: "target.runners", reason: .required, message: "must name at least one runner"))
        }
        errors += validateNameList(target.runners, at: "target.runners")
        errors += target.runnerSelector?.validate(at: "target.runnerSelector") ?? []
        for (index, condition) in (conditions ?? []).enumerated() where !RemoteRunSpec.isValidCondition(condition) {
            errors.append(
                FieldError(
                    path: "conditions[\(index)]",
                    message: "invalid condition \"\(condition)\": must match \(RemoteRunSpec.conditionPattern)"))
        }
        if let ttl = ttlSecondsAfterFinished, ttl < 0 {
            errors.append(FieldError(path: "ttlSecondsAfterFinished", message: "must not be negative"))
        }
        return errors
    }

    public static let fieldDescriptions = [
        "target": "Which runners run: all, runners by name, or a runnerSelector.",
        "conditions": "Conditions passed to the run command (each ^[A-Za-z0-9][A-Za-z0-9_]*$), e.g. force_inventory.",
        "keepOutput": "Keep each runner's output, readable with steady logs.",
        "asynchronous": "Return at once instead of waiting for results.",
        "timeout": "How long each runner's run may take.",
        "batchSize": "How many runners run at once: a count or a percentage.",
        "ttlSecondsAfterFinished": "Delete the RemoteRun this long after it finishes.",
    ]
}
