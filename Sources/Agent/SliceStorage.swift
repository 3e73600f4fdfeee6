/// Where an agent keeps its last good slice, so it can serve it after a restart while the controller is away.
///
/// ``AgentStateDirectory`` keeps it in `slice.json` on disk; ``InMemoryAgentStorage`` keeps it in memory, for
/// simulated agents and tests.
public protocol SliceStorage: Sendable {
    /// The last slice saved, or nil when none was.
    func loadSlice() throws(AgentError) -> RunnerSlice?
    /// Replaces the saved slice, atomically: after a crash the old or the new one is there, never a mixture.
    func saveSlice(_ slice: RunnerSlice) throws(AgentError)
}

/// Where an agent keeps its identity (runner name, credential, pinned CA) after enrolment.
public protocol IdentityStorage: Sendable {
    /// The identity saved at enrolment, or nil when the agent has not enrolled.
    func loadIdentity() throws(AgentError) -> AgentIdentity?
    /// Saves the identity enrolment produced.
    func saveIdentity(_ identity: AgentIdentity) throws(AgentError)
}
