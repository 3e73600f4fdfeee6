extension RemoteRunSpec.Target {
    /// A target from its fields; set exactly one (``RemoteRunSpec/validate()`` says so otherwise).
    public init(all: Bool? = nil, runners: [String]? = nil, runnerSelector: LabelSelector? = nil) {
        self.all = all
        self.runners = runners
        self.runnerSelector = runnerSelector
    }
}
