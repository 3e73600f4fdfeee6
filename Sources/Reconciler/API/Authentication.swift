import Crypto
import Foundation
import Hummingbird

/// Who is calling the API.
public enum Identity: Sendable, Equatable {
    /// The holder of the admin token: may do everything.
    case admin
    /// An enrolled agent, limited to its own runner.
    case runner(String)
    /// The holder of an events token (`steady token create --events`): may post events (`POST /events`), nothing
    /// else.
    case eventIngest
}

/// Maps bearer tokens to identities.
public protocol Authenticating: Sendable {
    func identity(forToken token: String) async -> Identity?
    /// Whether `token` may open `runner`'s agent stream, and until when (see ``AgentStreamAccess``).
    func streamAccess(forToken token: String, runner: String) async -> AgentStreamAccess
}

/// Accepts the admin token; compares SHA-256 digests in constant time.
public struct AdminTokenAuthenticator: Authenticating {
    private let adminDigest: [UInt8]

    public init(adminToken: String) {
        adminDigest = Array(SHA256.hash(data: Data(adminToken.utf8)))
    }

    public func identity(forToken token: String) async -> Identity? {
        let digest = Array(SHA256.hash(data: Data(token.utf8)))
        var difference: UInt8 = 0
        for (left, right) in zip(digest, adminDigest) { difference |= left ^ right }
        return difference == 0 ? .admin : nil
    }
}

/// The per-request context: Hummingbird's core storage plus the caller's identity.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Identity?

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// Kubernetes accepts request bodies up to 3 MiB.
    public var maxUploadSize: Int { 3 * 1024 * 1024 }
}

/// Rejects requests without a valid bearer token, except health probes.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let authenticator: any Authenticating
    static let publicPaths: Set<String> = ["/healthz", "/readyz", "/livez", "/steady/v1/ca", "/steady/v1/enroll"]
    static let probePaths = ["/healthz/", "/readyz/", "/livez/"]

    /// Health probes (with their per-check paths) and enrolment need no token.
    static func isPublic(_ path: String) -> Bool {
        // Webhooks are authenticated by their signature (GitWebhookRoutes), not by a token.
        publicPaths.contains(path) || probePaths.contains { path.hasPrefix($0) }
            || path.hasPrefix(GitWebhookRoutes.prefix)
    }

    func handle(
        _ request: Request, context: APIRequestContext,
        next: (Request, APIRequestContext) async throws -> Response
    ) async throws -> Response {
        if AuthenticationMiddleware.isPublic(request.uri.path) {
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            let identity = await authenticator.identity(forToken: String(header.dropFirst(7)))
        else {
            return APIResponses.error(APIError(.unauthorized, "Unauthorized: a valid bearer token is required"))
        }
        if identity == .eventIngest && !(request.method == .post && request.uri.path == "/events") {
            return APIResponses.error(APIError(.forbidden, "an events token may only post events (POST /events)"))
        }
        var context = context
        context.identity = identity
        return try await next(request, context)
    }
}
