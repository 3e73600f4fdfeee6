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

    /// Where one runner's run is, or where the whole run is (`status.phase`).
    ///
    /// `Pending` and `Running` are the only phases a runner leaves; every other phase is final.
    public enum Phase: String, SchemaEnum {
        case pending = "Pending"
        case running = "Running"
        case succeeded = "Succeeded"
        case failed = "Failed"
        case timedOut = "TimedOut"
        case unreachable = "Unreachable"
        case refused = "Refused"
        case cancelled = "Cancelled"
        case skipped = "Skipped"

        /// Whether a runner in this phase is done: its slot in a batch is free and its result will not change.
        public var isFinal: Bool { self != .pending && self != .running }

        /// Whether this final phase counts against `maxErrors`: the runner was meant to run and did not succeed.
        ///
        /// `Skipped` and `Cancelled` are decisions of the run itself, not errors of a runner.
        public var isError: Bool { [.failed, .timedOut, .unreachable, .refused].contains(self) }
    }

    /// One runner's result.
    public struct RunnerResult: Codable, Sendable, Equatable, FieldDocumented {
        public var runner: String
        public var phase: Phase
        public var exitCode: Int?
        /// The signal that ended the process, when a signal did (`TimedOut` runs end with 15 or 9).
        public var signal: Int?
        public var startTime: String?
        public var completionTime: String?
        public var outputBytes: Int64?
        public var outputTruncated: Bool?
        public var reason: String?
        public var message: String?
        /// With several controllers: the API URL of the replica that holds this runner's output (the one its agent
        /// streamed it to), where the other replicas fetch it from for the `log` subresource.
        public var outputReplica: String?

        public init(runner: String, phase: Phase) {
            self.runner = runner
            self.phase = phase
        }

        public static let fieldDescriptions = [
            "runner": "The runner's name.",
            "phase": "Pending, Running, Succeeded, Failed, TimedOut, Unreachable, Refused, Cancelled or Skipped.",
            "exitCode": "The process's exit status, when it exited.",
            "signal": "The signal that ended the process, when one did.",
            "startTime": "When the process started.",
            "completionTime": "When the runner reached its final phase.",
            "outputBytes": "Bytes the process wrote to stdout and stderr, kept or not.",
            "outputTruncated": "Whether the middle of the output was dropped to keep it within the limit.",
            "reason": "Why the runner is in this phase, in CamelCase (ExecNotAllowed, MaxErrorsExceeded, ...).",
            "message": "Details for a human.",
            "outputReplica": "With several controllers: the API URL of the replica holding this runner's output.",
        ]
    }

    /// How many runners are in each phase.
    public struct Counts: Codable, Sendable, Equatable, FieldDocumented {
        public var total: Int?
        public var pending: Int?
        public var running: Int?
        public var succeeded: Int?
        public var failed: Int?
        public var timedOut: Int?
        public var unreachable: Int?
        public var refused: Int?
        public var cancelled: Int?
        public var skipped: Int?

        public init(total: Int, pending: Int, running: Int, succeeded: Int, failed: Int) {
            (self.total, self.pending, self.running, self.succeeded, self.failed) = (
                total, pending, running, succeeded, failed
            )
        }

        /// The counts of some phases, one per runner; every phase is present, zero or not.
        public init(phases: some Sequence<Phase>) {
            var tally: [Phase: Int] = [:]
            var total = 0
            for phase in phases {
                tally[phase, default: 0] += 1
                total += 1
            }
            self.init(
                total: total, pending: tally[.pending] ?? 0, running: tally[.running] ?? 0,
                succeeded: tally[.succeeded] ?? 0, failed: tally[.failed] ?? 0)
            timedOut = tally[.timedOut] ?? 0
            unreachable = tally[.unreachable] ?? 0
            refused = tally[.refused] ?? 0
            cancelled = tally[.cancelled] ?? 0
            skipped = tally[.skipped] ?? 0
        }

        /// The count of one phase.
        public subscript(phase: Phase) -> Int {
            switch phase {
            case .pending: pending ?? 0
            case .running: running ?? 0
            case .succeeded: succeeded ?? 0
            case .failed: failed ?? 0
            case .timedOut: timedOut ?? 0
            case .unreachable: unreachable ?? 0
            case .refused: refused ?? 0
            case .cancelled: cancelled ?? 0
            case .skipped: skipped ?? 0
            }
        }

        public static let fieldDescriptions = [
            "total": "Runners targeted.", "pending": "Runners not started yet.", "running": "Runners running now.",
            "succeeded": "Runners whose process exited 0.", "failed": "Runners whose process failed.",
            "timedOut": "Runners stopped by spec.timeout.", "unreachable": "Runners that did not take the run in time.",
            "refused": "Runners whose agent refused the run.", "cancelled": "Runners cancelled by suspend or delete.",
            "skipped": "Runners not started because maxErrors was exceeded.",
        ]
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

    /// How long an agent has to take a run when `deliveryTimeout` is not set.
    public static let defaultDeliveryTimeout = DurationString(seconds: 60)
    /// The longest argv accepted in `command`, in elements, and of one element, in bytes.
    public static let maximumCommandArguments = 4096
    public static let maximumArgumentLength = 128 * 1024

    public var target: Target
    public var conditions: [String]?
    /// An explicit argv to run instead of the agent's own run command; only agents started with `--allow-exec`
    /// run it.
    public var command: [String]?
    public var keepOutput: Bool?
    public var asynchronous: Bool?
    public var timeout: DurationString?
    public var deliveryTimeout: DurationString?
    public var batchSize: CountOrPercent?
    public var maxErrors: CountOrPercent?
    public var suspend: Bool?
    public var ttlSecondsAfterFinished: Int?

    /// `deliveryTimeout`, or its default of one minute.
    public var effectiveDeliveryTimeout: DurationString { deliveryTimeout ?? Self.defaultDeliveryTimeout }

    public init(target: Target, conditions: [String]? = nil) {
        self.target = target
        self.conditions = conditions
    }

    public static func isValidCondition(_ condition: String) -> Bool {
        guard let first = condition.unicodeScalars.first, condition.utf8.count <= 1024 else { return false }
        func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
            scalar.isASCII
                && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar))
        }
        return isAlphanumeric(first) && condition.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "_" }
    }

    public func validate() -> [FieldError] {
        var errors: [FieldError] = []
        let chosen = [target.all == true, target.runners != nil, target.runnerSelector != nil].filter { $0 }.count
        if chosen != 1 {
            errors.append(
                FieldError(
                    path: "target", reason: .required,
                    message: "set exactly one of all: true, runners or runnerSelector"))
        }
        if let runners = target.runners, runners.isEmpty {
            errors.append(
                FieldError(path: "target.runners", reason: .required, message: "must name at least one runner"))
        }
        errors += validateNameList(target.runners, at: "target.runners")
        errors += target.runnerSelector?.validate(at: "target.runnerSelector") ?? []
        for (index, condition) in (conditions ?? []).enumerated() where !RemoteRunSpec.isValidCondition(condition) {
            errors.append(
                FieldError(
                    path: "conditions[\(index)]",
                    message: "invalid condition \"\(condition)\": must match \(RemoteRunSpec.conditionPattern)"))
        }
        errors += validateCommand()
        for (field, duration) in [("timeout", timeout), ("deliveryTimeout", deliveryTimeout)] {
            if let duration, duration.seconds <= 0 {
                errors.append(FieldError(path: field, message: "must be longer than zero, like 30s or 5m"))
            }
        }
        if let batchSize, batchSize.isZero {
            errors.append(
                FieldError(path: "batchSize", message: "must be at least 1 or 1%; leave it out to run all at once"))
        }
        if let ttl = ttlSecondsAfterFinished, ttl < 0 {
            errors.append(FieldError(path: "ttlSecondsAfterFinished", message: "must not be negative"))
        }
        return errors
    }

    private func validateCommand() -> [FieldError] {
        guard let command else { return [] }
        guard let program = command.first else {
            return [
                FieldError(
                    path: "command", reason: .required, message: "must name the program to run, like [/usr/bin/uptime]")
            ]
        }
        var errors: [FieldError] = []
        if !program.hasPrefix("/") {
            errors.append(
                FieldError(
                    path: "command[0]",
                    message: "\"\(program)\" is not an absolute path: no shell or PATH lookup runs it; write "
                        + "/usr/bin/\(program) or similar"))
        }
        if command.count > Self.maximumCommandArguments {
            errors.append(
                FieldError(
                    path: "command", reason: .tooLong,
                    message: "has \(command.count) arguments; at most \(Self.maximumCommandArguments)"))
        }
        for (index, argument) in command.enumerated() {
            if argument.utf8.contains(0) {
                errors.append(FieldError(path: "command[\(index)]", message: "must not contain a NUL byte"))
            } else if argument.utf8.count > Self.maximumArgumentLength {
                errors.append(
                    FieldError(
                        path: "command[\(index)]", reason: .tooLong,
                        message: "is \(argument.utf8.count) bytes; at most \(Self.maximumArgumentLength)"))
            }
        }
        return errors
    }

    public static let fieldDescriptions = [
        "target": "Which runners run: all, runners by name, or a runnerSelector.",
        "conditions": "Conditions passed to the run command (each ^[A-Za-z0-9][A-Za-z0-9_]*$), e.g. force_inventory.",
        "keepOutput": "Keep each runner's output, readable with steady logs.",
        "asynchronous": "Return at once instead of waiting for results.",
        "command": "An argv with an absolute program path, run instead of the agent's run command; only agents "
            + "started with --allow-exec run it, others report Refused (ExecNotAllowed).",
        "timeout": "How long each runner's run may take; then its process group gets SIGTERM, then SIGKILL, and "
            + "it is TimedOut.",
        "deliveryTimeout": "How long an agent has to take the run before its runner is Unreachable (default 1m).",
        "batchSize": "How many runners run at once, a rolling window: a count or a percentage. A slot frees when a "
            + "runner finishes.",
        "maxErrors": "How many runners may fail (a count or a percentage) before the runners not started are "
            + "Skipped and the run Failed (default unlimited).",
        "suspend": "Stop the run: running processes are killed and runners not started are Cancelled.",
        "ttlSecondsAfterFinished": "Delete the RemoteRun this long after it finishes.",
    ]
}
