/// The reasons a GitRepository's conditions give, one for each thing a person would fix differently.
public enum GitSourceReason: String, Sendable, Equatable {
    /// Fetched and applied.
    case applied = "Applied"
    /// A sync is running.
    case progressing = "Progressing"
    /// The repository refused the credentials (or asked for some that were not given).
    case authenticationFailed = "AuthenticationFailed"
    /// The branch, tag, semver range or commit is not in the repository.
    case refNotFound = "RefNotFound"
    /// The SSH host key is not the one in `knownHosts`.
    case knownHostsMismatch = "KnownHostsMismatch"
    /// git did not finish within `spec.timeout`.
    case timeout = "Timeout"
    /// git is not installed on the controller.
    case gitUnavailable = "GitUnavailable"
    /// A manifest is broken: nothing of the commit was applied.
    case invalidManifests = "InvalidManifests"
    /// The path is empty or missing: applying it would prune everything.
    case pruneBlocked = "PruneBlocked"
    /// Some objects could not be applied.
    case applyFailed = "ApplyFailed"
    /// Another source already manages an object this one declares.
    case ownershipConflict = "OwnershipConflict"
    /// The secretRef Secret is missing or lacks the keys the URL needs.
    case invalidSecret = "InvalidSecret"
    /// Any other failure of git (unreachable host, not a repository).
    case fetchFailed = "FetchFailed"
    /// `spec.suspend` is set.
    case suspended = "Suspended"

    /// Whether retrying without a change to the spec or the Secret cannot help (the `Stalled` condition).
    public var isStalled: Bool {
        switch self {
        case .authenticationFailed, .knownHostsMismatch, .gitUnavailable, .invalidSecret, .refNotFound: true
        default: false
        }
    }
}
