import Events
import Foundation
import Hummingbird
import Resources

/// `GET /apis/steady.dev/v1/executions[?labelSelector=route=NAME]` and `.../executions/NAME`: the read-only
/// execution records of the event pipeline, newest first, as `Execution` objects (like Kubernetes Events, they are
/// not stored objects), or as a Table when the caller asks for one, as `steady get` and kubectl do.
struct ExecutionRoutes {
    let pipeline: EventPipeline

    func register(on router: Router<APIRequestContext>) {
        let path = "/apis/\(API.group)/\(API.version)/executions"
        router.get(RouterPath(path)) { request, context -> Response in
            guard context.identity == .admin else {
                return APIResponses.error(APIError(.forbidden, "only an admin may list executions"))
            }
            var route: String?
            var action: String?
            for requirement in (request.uri.queryParameters.get("labelSelector") ?? "").split(separator: ",") {
                let parts = requirement.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { continue }
                if parts[0] == "route" { route = parts[1] }
                if parts[0] == "action" { action = parts[1] }
            }
            let limit = request.uri.queryParameters.get("limit").flatMap(Int.init) ?? 500
            do {
                let records = try await pipeline.executions(route: route, action: action, limit: min(limit, 10_000))
                let items = records.map(Self.object)
                if TableRendering.isRequested(accept: request.headers[.accept]) {
                    return APIResponses.json(TableRendering.table(items, info: Kinds.execution, resourceVersion: nil))
                }
                return APIResponses.json([
                    "apiVersion": .string(API.apiVersion), "kind": "ExecutionList", "metadata": [:],
                    "items": .array(items),
                ])
            } catch {
                return APIResponses.error(APIError(.serviceUnavailable, "cannot read executions: \(error)"))
            }
        }
        router.get(RouterPath(path + "/:name")) { request, context -> Response in
            guard context.identity == .admin else {
                return APIResponses.error(APIError(.forbidden, "only an admin may read executions"))
            }
            let name = context.parameters.get("name") ?? ""
            do {
                guard let record = try await pipeline.execution(named: name) else {
                    return APIResponses.error(.notFound(Kinds.execution, name))
                }
                let object = Self.object(record)
                if TableRendering.isRequested(accept: request.headers[.accept]) {
                    return APIResponses.json(
                        TableRendering.table([object], info: Kinds.execution, resourceVersion: nil))
                }
                return APIResponses.json(object)
            } catch {
                return APIResponses.error(APIError(.serviceUnavailable, "cannot read executions: \(error)"))
            }
        }
    }

    private static func object(_ record: ExecutionRecord) -> JSONValue {
        record.object(creationTimestamp: Timestamp.format(Date(timeIntervalSince1970: Double(record.time) / 1000)))
    }
}
