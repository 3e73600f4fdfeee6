import Foundation
import Hummingbird
import NIOCore
import Resources

/// `GET /apis/steady.dev/v1/remoteruns/{name}/log[?runner=R][&follow=true]`: a RemoteRun's output, in the
/// manner of the pod log subresource, as `text/plain` lines (see ``RunLogFormatter`` for their prefixes).
///
/// Admins only: an agent's credential gets 403. An unknown run, or a runner the run neither targets nor has
/// output of, is a 404 `Status`. With `follow=true` the answer streams: the stored output, then live output,
/// until the runner (or, without `runner`, the whole run) is finished, or the run is deleted.
///
/// With several controller replicas, a runner's output is on the replica its agent streamed it to (``RunLogPlan``):
/// a request this replica cannot answer alone is passed on, with the caller's token, to the replica that can
/// (`RunLogRoutes+Replicas.swift`).
///
/// `GET /apis/steady.dev/v1/runners/{name}/log[?follow=true]`: the output of the runner's latest scheduled run
/// (``ScheduledRunOutput``), unprefixed. With `follow=true`, while that run goes (the Runner's `status.lastRun` is
/// `Running`), the answer streams until its result arrives, the next run starts, `lastRun` shows it ended, or the
/// Runner is deleted.
struct RunLogRoutes: Sendable {
    let objects: ObjectService
    let output: RunOutputStore
    let metrics: APIMetrics
    /// With several controller replicas: this one's advertised URL and a way to the others.
    var replicas: ReplicaPeers? = nil

    func register(on router: Router<APIRequestContext>) {
        // Registered as a constant segment after `:resource/:name`, so the trie still resolves every other
        // path (`remoteruns/NAME`, `remoteruns/NAME/status`) to ObjectRoutes.
        router.get("/apis/\(API.group)/\(API.version)/:resource/:name/log") { request, context in
            let resource = context.parameters.get("resource") ?? ""
            let response: Response
            do {
                response = try await log(request, context: context, resource: resource)
            } catch let error as APIError {
                response = APIResponses.error(error)
            } catch {
                response = APIResponses.error(APIError(.internalError, "\(error)"))
            }
            metrics.countRequest(verb: "get", resource: resource, code: Int(response.status.code))
            return response
        }
    }

    private func log(_ request: Request, context: APIRequestContext, resource: String) async throws(APIError)
        -> Response
    {
        guard let info = Kinds.info(forPlural: resource) else {
            throw APIError(.notFound, "the server could not find the requested resource (\(resource).\(API.group))")
        }
        guard info.kind == RemoteRunSpec.kind || info.kind == RunnerSpec.kind else {
            throw APIError(.notFound, "\(info.plural).\(API.group) has no subresource \"log\"")
        }
        let name = context.parameters.get("name") ?? ""
        switch context.identity {
        case .admin:
            break
        case .runner(let runner):
            throw APIError(
                .forbidden,
                "runner \"\(runner)\" cannot get \(info.plural).\(API.group) \"\(name)\"/log: only an admin reads "
                    + "run output", kind: info.plural, name: name)
        case .eventIngest:
            throw APIError(.forbidden, "an events token may only post events")
        case nil:
            throw APIError(.unauthorized, "Unauthorized")
        }
        if let error = Names.validateObjectName(name).first { throw APIError(.badRequest, error.message) }
        let query = QueryParameters(request)
        let isFollowing = try query.bool("follow") ?? false
        let runner = query.string("runner")
        let forwarding = Forwarding(
            info: info, name: name, runner: runner, isFollowing: isFollowing,
            authorization: request.headers[.authorization])
        let isProxied = request.headers[ReplicaPeers.proxiedHeader] != nil
        if info.kind == RunnerSpec.kind {
            return try await scheduledLog(forwarding, isProxied: isProxied)
        }
        if let runner, runner.isEmpty {
            throw APIError(.badRequest, "invalid value \"\" for query parameter runner: name a runner of the run")
        }
        let object = try await objects.get(info, name: name)
        guard let uid = object["metadata"]?["uid"]?.stringValue else {
            throw APIError(.internalError, "\(info.plural).\(API.group) \"\(name)\" has no metadata.uid")
        }
        if let runner, !RemoteRunSummary.runners(of: object).contains(runner),
            !output.runners(run: uid).contains(runner)
        {
            throw APIError(
                .notFound, "\(info.plural).\(API.group) \"\(name)\" has no runner \"\(runner)\"", kind: info.plural,
                name: name)
        }
        var plan = RunLogPlan(ownURL: replicas?.url, isProxied: isProxied, holders: RunLogPlan.holders(of: object))
        let isFinished = object["status"]?["phase"]?.stringValue
            .flatMap(RemoteRunSpec.Phase.init(rawValue:))?.isFinal ?? false
        if isFinished, object["spec"]?["keepOutput"]?.boolValue != true, output.runners(run: uid).isEmpty,
            plan.source(runner: runner) == .local
        {
            throw APIError(
                .notFound,
                "\(info.plural).\(API.group) \"\(name)\" is finished and its output was not kept: set spec.keepOutput "
                    + "(steady run --keep-output) to read it afterwards", kind: info.plural, name: name)
        }
        var current = object
        if isFollowing, let runner, plan.awaitsHolder(of: runner), !RemoteRunSummary.isOver(object),
            !Self.isFinal(runner, in: object)
        {
            current = try await awaitHolder(info: info, object: object, runner: runner)
            plan.holders = RunLogPlan.holders(of: current)
        }
        switch plan.source(runner: runner) {
        case .local where isFollowing && runner == nil && plan.followsHoldersAsNamed:
            return try await followMerged(forwarding, object: current, uid: uid, plan: plan, others: [])
        case .local:
            break
        case .proxy(let replica):
            return try await proxy(forwarding, to: replica)
        case .merge(let others):
            return isFollowing
                ? try await followMerged(forwarding, object: current, uid: uid, plan: plan, others: others)
                : try await merged(forwarding, uid: uid, plan: plan, others: others)
        }
        guard isFollowing else {
            // One runner at a time, so that a run of many runners is never all in memory at once.
            let runners = runner.map { [$0] } ?? output.runners(run: uid).filter(plan.servesHere)
            let output = self.output
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: ResponseBody { writer in
                    for name in runners {
                        let text = RunLogFormatter.text(
                            of: output.outputs(run: uid, runner: name), showsRunner: runner == nil)
                        if !text.isEmpty { try await writer.write(ByteBuffer(bytes: text)) }
                    }
                    try await writer.finish(nil)
                })
        }
        let shown = plan
        return try await follow(
            info: info, object: current, uid: uid, runner: runner, showing: { shown.servesHere($0) })
    }

    /// Whether `runner`'s result in the RemoteRun `run` has a final phase.
    static func isFinal(_ runner: String, in run: JSONValue) -> Bool {
        let result = run["status"]?["results"]?.arrayValue?.first { $0["runner"]?.stringValue == runner }
        return result?["phase"]?.stringValue.flatMap(RemoteRunSpec.Phase.init(rawValue:))?.isFinal ?? false
    }

    /// The output of runner `name`'s latest scheduled run, all of it stored (at most the per-runner bound), and
    /// followed while that run goes when `isFollowing`; with several replicas, read through the one holding it
    /// (`status.lastRun.outputReplica`).
    private func scheduledLog(_ forwarding: Forwarding, isProxied: Bool) async throws(APIError) -> Response {
        let (info, name, isFollowing) = (forwarding.info, forwarding.name, forwarding.isFollowing)
        let object = try await objects.get(info, name: name)
        let holders = object["status"]?["lastRun"]?["outputReplica"]?.stringValue.map { [name: $0] } ?? [:]
        let plan = RunLogPlan(ownURL: replicas?.url, isProxied: isProxied, holders: holders)
        if case .proxy(let replica) = plan.source(runner: name) {
            var forwarding = forwarding
            forwarding.runner = nil
            return try await proxy(forwarding, to: replica)
        }
        if isFollowing && !Self.isScheduledRunOver(object) {
            return try await follow(
                info: info, object: object, run: ScheduledRunOutput.run(of: name), runner: name, showsRunner: false,
                isOver: { Self.isScheduledRunOver($0) })
        }
        let text = RunLogFormatter.text(
            of: output.outputs(run: ScheduledRunOutput.run(of: name), runner: name), showsRunner: false)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
    }

    /// Whether a Runner's latest scheduled run is over: its `status.lastRun` is not `Running`.
    static func isScheduledRunOver(_ runner: JSONValue) -> Bool {
        runner["status"]?["lastRun"]?["phase"]?.stringValue != RemoteRunSpec.Phase.running.rawValue
    }

    /// Streams a RemoteRun's output until the followed runners are finished or the run is over; following every
    /// runner, only those `showing` accepts (with several replicas, the runners whose output is kept here).
    private func follow(
        info: KindInfo, object: JSONValue, uid: String, runner: String?,
        showing: @escaping @Sendable (String) -> Bool
    ) async throws(APIError) -> Response {
        var shows = showing
        if runner != nil { shows = { _ in true } }
        return try await follow(
            info: info, object: object, run: uid, runner: runner, showsRunner: runner == nil,
            isOver: { RemoteRunSummary.isOver($0) }, showing: shows)
    }

    /// Streams the output of `run` (a key of the output store) in `object`, of one runner or all: what is stored,
    /// then live output, until the store ends it (the runner finished, the run completed or was deleted), or the
    /// object is deleted, replaced or `isOver`.
    private func follow(
        info: KindInfo, object: JSONValue, run: String, runner: String?, showsRunner: Bool,
        isOver: @escaping @Sendable (JSONValue) -> Bool, showing: @escaping @Sendable (String) -> Bool = { _ in true }
    ) async throws(APIError) -> Response {
        let uid = object["metadata"]?["uid"]?.stringValue
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        let events = try await watch(info: info, object: object)
        // A run already over has no more output coming: followers end after what is stored.
        if isOver(object) { output.complete(run: run) }
        let chunks = output.followEvents(run: run, runner: runner)
        let output = self.output
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody { writer in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // The run's end (or deletion) ends every follower of it, after what they were sent.
                    group.addTask {
                        for try await event in events where event.object.name == name {
                            let value = try? JSONValue.parse(event.object.value)
                            if event.type == .deleted || value?["metadata"]?["uid"]?.stringValue != uid
                                || value.map(isOver) == true
                            {
                                output.complete(run: run)
                                return
                            }
                        }
                    }
                    var formatter = RunLogFormatter(showsRunner: showsRunner)
                    for await event in chunks where showing(event.runner) {
                        let bytes = formatter.format(event)
                        if !bytes.isEmpty { try await writer.write(ByteBuffer(bytes: bytes)) }
                    }
                    let rest = formatter.flush()
                    if !rest.isEmpty { try await writer.write(ByteBuffer(bytes: rest)) }
                    group.cancelAll()
                }
                try await writer.finish(nil)
            })
    }

    /// The changes of `object`'s kind after the revision it was read at.
    func watch(info: KindInfo, object: JSONValue) async throws(APIError) -> AsyncThrowingStream<StoreEvent, any Error> {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        let revision = Int64(object["metadata"]?["resourceVersion"]?.stringValue ?? "") ?? 0
        do {
            return try await objects.store.watch(kind: info.kind, fromRevision: revision)
        } catch {
            throw APIError(.serviceUnavailable, "cannot watch \(info.plural).\(API.group) \"\(name)\": \(error)")
        }
    }
}
