import Foundation
import Resources

/// Whether a credential may open an agent stream: as which runner and until when, or the refusal to send.
public enum AgentStreamAccess: Sendable, Equatable {
    /// Served as `runner` until `expires` (nil: the credential does not expire), when the stream is closed.
    case granted(runner: String, expires: Date?)
    case refused(AgentStreamRefusal)
}

extension Authenticating {
    /// Access by identity alone, for authenticators that know nothing of expiry: a runner's own credential opens
    /// its stream, with no expiry.
    public func streamAccess(forToken token: String, runner: String) async -> AgentStreamAccess {
        switch await identity(forToken: token) {
        case nil:
            return .refused(AgentStreamRefusal(refused: 401, message: "Unauthorized: unknown or revoked credential"))
        case .runner(let name) where name == runner:
            return .granted(runner: runner, expires: nil)
        default:
            return .refused(
                AgentStreamRefusal(
                    refused: 403, message: "an agent may only use its own runner's stream (runner \"\(runner)\")"))
        }
    }
}
