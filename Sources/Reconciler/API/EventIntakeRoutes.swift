import Events
import Foundation
import Hummingbird
import NIOCore
import Resources

/// `POST /events` on the API (HTTPS, with an admin or ingest token): Postee-compatible intake of any JSON body, as
/// the plain events port (``EventServer``) takes it.
///
/// The answer is 202 with the event's id once it is in the durable queue, 400 with the parse error for a body
/// that is not JSON, 413 over the size limit and 429 with `Retry-After` when the queue is full.
public enum EventIntakeRoutes {
    /// Adds the intake paths to `router`; `isAllowed` decides who may post.
    public static func register<Context: RequestContext>(
        on router: Router<Context>, paths: [String], pipeline: EventPipeline,
        isAllowed: @escaping @Sendable (Request, Context) -> Bool = { _, _ in true }
    ) {
        for path in paths {
            router.post(RouterPath(path)) { request, context -> Response in
                guard isAllowed(request, context) else {
                    return answer(.unauthorized, ["message": "a valid bearer token is required to post events"])
                }
                return await take(request, pipeline: pipeline)
            }
        }
    }

    /// Reads the body and takes the event in.
    public static func take(_ request: Request, pipeline: EventPipeline) async -> Response {
        var request = request
        let limit = pipeline.configuration.maxEventBytes
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            return answer(.contentTooLarge, ["message": .string("the event is larger than \(limit) bytes")])
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return answer(.contentTooLarge, ["message": .string("the event is larger than \(limit) bytes")])
        } catch {
            return answer(.badRequest, ["message": .string("cannot read the body: \(error)")])
        }
        do {
            let id = try await pipeline.accept(Array(buffer.readableBytesView))
            return answer(.accepted, ["id": .string(id)])
        } catch {
            var response = answer(
                HTTPResponse.Status(code: error.code.rawValue), ["message": .string(error.message)])
            if error.isRetryable { response.headers[.retryAfter] = "1" }
            return response
        }
    }

    static func answer(_ status: HTTPResponse.Status, _ body: JSONValue) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: IntakeAnswer.body(body))))
    }
}
