import Events
import Foundation
import Hummingbird
import NIOCore
import Resources

/// What runners send about events (``EventProtocol``): hand-offs go into the controller's durable queue, execution
/// records into its store, each answered 200 only once written. Only an agent's credential may call them, and the
/// records are filed under that agent's runner, whatever they say.
struct EventUpstreamRoutes {
    let pipeline: EventPipeline

    func register(on router: Router<APIRequestContext>) {
        router.post(RouterPath(stringLiteral: EventProtocol.handOffPath)) { request, context -> Response in
            guard case .runner = context.identity else {
                return APIResponses.error(APIError(.forbidden, "only runner agents hand events up"))
            }
            do {
                let batch = try await Self.decode(EventHandOffBatch.self, request)
                for handOff in batch.handOffs { try await pipeline.accept(handOff) }
                return APIResponses.json(["accepted": .int(Int64(batch.handOffs.count))])
            } catch let error as IntakeError {
                var response = APIResponses.error(
                    APIError(error.code == .queueFull ? .tooManyRequests : .serviceUnavailable, error.message))
                response.headers[.retryAfter] = "1"
                return response
            } catch let error as APIError {
                return APIResponses.error(error)
            }
        }
        router.post(RouterPath(stringLiteral: EventProtocol.executionsPath)) { request, context -> Response in
            guard case .runner(let runner) = context.identity else {
                return APIResponses.error(APIError(.forbidden, "only runner agents report executions"))
            }
            do {
                var batch = try await Self.decode(request) { try ExecutionReportBatch(json: $0) }
                for index in batch.executions.indices { batch.executions[index].location = runner }
                try await pipeline.acceptReport(batch.executions)
                return APIResponses.json(["recorded": .int(Int64(batch.executions.count))])
            } catch let error as APIError {
                return APIResponses.error(error)
            } catch {
                return APIResponses.error(APIError(.serviceUnavailable, "cannot store executions: \(error)"))
            }
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws(APIError) -> T {
        try await decode(request) { try JSONDecoder().decode(T.self, from: $0) }
    }

    /// The batch in `request`'s body, read by `read`; 413 over the size limit, 400 when `read` refuses it.
    static func decode<T>(_ request: Request, read: (Data) throws -> T) async throws(APIError) -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: EventProtocol.maximumBatchBytes)
        } catch {
            throw APIError(.requestEntityTooLarge, "the batch is larger than \(EventProtocol.maximumBatchBytes) bytes")
        }
        do {
            return try read(Data(buffer: buffer))
        } catch {
            throw APIError(.badRequest, "invalid batch: \(error)")
        }
    }
}
