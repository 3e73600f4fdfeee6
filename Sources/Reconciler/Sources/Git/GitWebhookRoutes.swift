import Foundation
import HTTPTypes
import Hummingbird
import Resources

/// `POST /hooks/gitrepositories/NAME`: syncs the GitRepository at once when the request is signed with the
/// token in the Secret its `spec.webhook.secretRef` names. Needs no bearer token; anything unsigned, wrongly
/// signed, or for a repository without a webhook gets 401 (the same answer, so names cannot be probed).
struct GitWebhookRoutes: Sendable {
    static let prefix = "/hooks/gitrepositories/"
    let objects: ObjectService
    let sources: any GitSourceTriggering
    let limit = 1024 * 1024

    func register(on router: Router<APIRequestContext>) {
        router.post("/hooks/gitrepositories/:name") { request, context in
            let name = context.parameters.get("name") ?? ""
            var request = request
            guard let buffer = try? await request.collectBody(upTo: limit) else {
                return APIResponses.error(
                    APIError(.requestEntityTooLarge, "webhook body is larger than \(limit / 1024) KiB"))
            }
            let body = Data(buffer: buffer)
            guard let token = await token(of: name),
                GitWebhookSignature.isValid(
                    body: body, token: token,
                    header: { HTTPField.Name($0).flatMap { request.headers[$0] } })
            else {
                return APIResponses.error(
                    APIError(
                        .unauthorized,
                        "webhook not authenticated: sign the body with the token of the GitRepository's "
                            + "spec.webhook.secretRef (\(GitWebhookSignature.githubHeader), "
                            + "\(GitWebhookSignature.gitlabHeader) or \(GitWebhookSignature.genericHeader))"))
            }
            await sources.trigger(name)
            return APIResponses.json(["kind": "Status", "status": "Success", "message": "sync requested"], status: .accepted)
        }
    }

    /// The webhook token of the GitRepository `name`, if it has one.
    private func token(of name: String) async -> String? {
        guard let object = try? await objects.get(Kinds.gitRepository, name: name),
            let repository = try? object.decode(as: GitRepository.self),
            let reference = repository.spec.webhook?.secretRef,
            let secret = try? await objects.get(Kinds.secret, name: reference.name, revealSecrets: true)
                .decode(as: Secret.self)
        else { return nil }
        return secret.value(forKey: "token")
    }
}
