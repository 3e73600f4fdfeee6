import Events
import Foundation
import Hummingbird
import Resources

/// `GET /apis/steady.dev/v1/executions[?labelSelector=route=NAME]`: the read-only execution records of the event
/// pipeline, newest first, as a list of `Execution` objects (like Kubernetes Events, they are not stored objects).
struct ExecutionRoutes {
    let pipeline: EventPipeline

    func register(on router: Router<APIRequestContext>) {
        router.get("/apis/\(API.group)/\(API.version)/executions") { request, context -> Response in
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
                let records = try pipeline.store.executions(route: route, action: action, limit: min(limit, 10_000))
                let items = records.map {
                    $0.object(creationTimestamp: Timestamp.format(Date(timeIntervalSince1970: Double($0.time) / 1000)))
                }
                return APIResponses.json([
                    "apiVersion": .string(API.apiVersion), "kind": "ExecutionList", "metadata": [:],
                    "items": .array(items),
                ])
            } catch {
                return APIResponses.error(APIError(.serviceUnavailable, "cannot read executions: \(error)"))
            }
        }
    }
}
