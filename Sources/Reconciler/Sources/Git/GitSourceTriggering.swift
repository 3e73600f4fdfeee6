/// What a signed GitRepository webhook asks for: a look at the remote now.
public protocol GitSourceTriggering: Sendable {
    /// Syncs the GitRepository `name` soon; bursts coalesce.
    func trigger(_ name: String) async
}

extension GitSourceController: GitSourceTriggering {}
