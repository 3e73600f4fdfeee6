import Hummingbird

/// Answers the router's own errors (no route for the path, a body over the upload limit) with a `Status`, as
/// every other error is answered, instead of an empty body without a content type.
struct StatusErrorMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(
        _ request: Request, context: APIRequestContext,
        next: (Request, APIRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let reason: APIError.Reason =
                switch error.status.code {
                case 404: .notFound
                case 405: .methodNotAllowed
                case 413: .requestEntityTooLarge
                case 415: .unsupportedMediaType
                case 400..<500: APIError.Reason("BadRequest", code: error.status.code)
                default: .internalError
                }
            let message = error.body ?? (reason == .notFound ? "the server could not find the requested resource" : error.status.reasonPhrase)
            return APIResponses.error(APIError(reason, message))
        }
    }
}
