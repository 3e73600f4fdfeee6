extension RemoteRunSpec.Target {
    /// A target from its fields (the memberwise initializer is internal); set exactly one, as
    /// ``RemoteRunSpec/validate()`` requires.
    public static func make(all: Bool?, runners: [String]?, runnerSelector: LabelSelector?) -> Self {
        Self(all: all, runners: runners, runnerSelector: runnerSelector)
    }
}
