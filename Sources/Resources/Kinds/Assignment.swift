/// Places routes and actions on runners chosen by name or label selector.
public struct AssignmentSpec: ResourceSpec, FieldDocumented {
    public struct Status: ResourceStatus {
        public var observedGeneration: Int64?
        public var conditions: [Condition]?
        public var matchedRunners: [String]?
        /// How many runners match; `matchedRunners` lists at most the first 100 of them.
        public var matchedRunnerCount: Int?
        public var syncedRunners: Int?
        public init() {}
    }

    public static let kind = "Assignment"
    public static let plural = "assignments"
    public static let shortNames = ["asg"]

    public var runners: [String]?
    public var runnerSelector: LabelSelector?
    public var routes: [String]?
    public var actions: [String]?

    public init(
        runners: [String]? = nil, runnerSelector: LabelSelector? = nil, routes: [String]? = nil,
        actions: [String]? = nil
    ) {
        self.runners = runners
        self.runnerSelector = runnerSelector
        self.routes = routes
        self.actions = actions
    }

    /// True when the runner is named or selected.
    public func matches(runnerName: String, labels: [String: String]) -> Bool {
        if runners?.contains(runnerName) == true { return true }
        return runnerSelector?.matches(labels) ?? false
    }

    public func validate() -> [FieldError] {
        var errors = validateNameList(runners, at: "runners") + validateNameList(routes, at: "routes")
            + validateNameList(actions, at: "actions")
        errors += runnerSelector?.validate(at: "runnerSelector") ?? []
        if (runners ?? []).isEmpty && runnerSelector == nil {
            errors.append(FieldError(path: "", reason: .required, message: "set runners, runnerSelector or both"))
        }
        if (routes ?? []).isEmpty && (actions ?? []).isEmpty {
            errors.append(FieldError(path: "", reason: .required, message: "set routes, actions or both"))
        }
        return errors
    }

    public static let fieldDescriptions = [
        "runners": "Runner names that take the routes and actions.",
        "runnerSelector": "A label selector choosing runners; combined with runners by union.",
        "routes": "Routes evaluated on the chosen runners.",
        "actions": "Actions executed on the chosen runners instead of the controller.",
    ]
}
