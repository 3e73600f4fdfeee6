/// Decides which of several controller replicas sharing one store runs the reconcilers and the manifest sources.
public protocol LeaderElector: Sendable {
    /// Campaigns until cancelled; each time this replica wins, runs `lead` with a view of the store whose writes
    /// fail once the term is over, and cancels `lead` (and waits for it to return) when the term ends, before any
    /// other replica can win.
    func run(lead: @escaping @Sendable (any ObjectStore) async -> Void) async throws
}
