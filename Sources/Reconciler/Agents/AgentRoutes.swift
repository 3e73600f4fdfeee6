import Foundation
import Hummingbird
import NIOCore
import Resources

/// The HTTP side of the agent protocol: CA discovery and enrolment (the stream is ``AgentStreamServer``'s), and
/// the convergence query behind `apply --wait`.
struct AgentRoutes: Sendable {
    let gateway: AgentGateway
    let caCertificatePEM: String

    func register(on router: Router<APIRequestContext>) {
        router.get(RouterPath(stringLiteral: AgentProtocol.caPath)) { _, _ in
            APIResponses.text(caCertificatePEM, contentType: "application/x-pem-file")
        }
        router.post(RouterPath(stringLiteral: AgentProtocol.enrollPath)) { request, context in
            await respond { try await enroll(request, context: context) }
        }
        router.post(RouterPath(stringLiteral: AgentProtocol.credentialPath)) { request, context in
            await respond { try await rotate(request, context: context) }
        }
        router.post(RouterPath(stringLiteral: ConvergenceRequest.path)) { request, context in
            await respond {
                guard context.identity == .admin else {
                    throw APIError(.forbidden, "only admins may ask about convergence")
                }
                let query: ConvergenceRequest = try await decodeBody(request, context: context, limit: context.maxUploadSize)
                return APIResponses.json(try JSONValue(encoding: await gateway.convergence(query)))
            }
        }
    }

    private func respond(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            return APIResponses.error(error)
        } catch {
            return APIResponses.error(APIError(.internalError, "\(error)"))
        }
    }

    private func decodeBody<T: Decodable>(
        _ request: Request, context: APIRequestContext, limit: Int = 64 * 1024
    ) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw APIError(.requestEntityTooLarge, "request body is larger than \(limit / 1024) KiB")
        }
        do {
            return try StrictDecoder().decode(T.self, from: try JSONValue.parse(Data(buffer: buffer)))
        } catch let failure as ValidationFailure {
            throw APIError(.badRequest, "invalid request: \(failure)", causes: failure.errors)
        } catch {
            throw APIError(.badRequest, "the request body is not valid JSON")
        }
    }

    private func enroll(_ request: Request, context: APIRequestContext) async throws -> Response {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw APIError(.unauthorized, "enrolment needs a join token as bearer token")
        }
        try await gateway.credentials.verifyJoinToken(String(header.dropFirst(7)))
        let enrollment: EnrollmentRequest = try await decodeBody(request, context: context)
        var errors = Names.validateObjectName(enrollment.name, at: "name")
        for (key, value) in enrollment.labels ?? [:] {
            errors += Names.validateLabel(key: key, value: value, at: "labels")
        }
        if !errors.isEmpty {
            throw APIError(.invalid, "invalid enrolment: \(ValidationFailure(errors))", causes: errors)
        }
        let name = enrollment.name
        if await gateway.isLive(runner: name), await gateway.credentials.hasCredential(runner: name) {
            throw APIError(.conflict, "runner \"\(name)\" is held by another live agent", kind: "runners", name: name)
        }
        let issued = try await gateway.enroll(name: name, labels: enrollment.labels ?? [:])
        return APIResponses.json(
            try JSONValue(
                encoding: EnrollmentResponse(
                    runner: name, credential: issued.credential, expiresAt: issued.expires.map(Timestamp.format))))
    }

    /// Rotates the calling agent's credential: the bearer must be its runner's current credential.
    private func rotate(_ request: Request, context: APIRequestContext) async throws -> Response {
        guard case .runner = context.identity, let header = request.headers[.authorization], header.hasPrefix("Bearer ")
        else {
            throw APIError(.forbidden, "only an agent may rotate its credential, with that credential as bearer token")
        }
        let (runner, issued) = try await gateway.credentials.rotate(token: String(header.dropFirst(7)))
        return APIResponses.json(
            try JSONValue(
                encoding: EnrollmentResponse(
                    runner: runner, credential: issued.credential, expiresAt: issued.expires.map(Timestamp.format))))
    }
}
