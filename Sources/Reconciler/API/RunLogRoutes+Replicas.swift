import Foundation
import Hummingbird
import NIOCore
import Resources

/// The `log` subresource of a RemoteRun whose output is, at least in part, on other controller replicas
/// (``RunLogPlan``): the request is passed on with the caller's own `Authorization` header, so the replica that
/// answers decides what the caller may read, and with ``ReplicaPeers/proxiedHeader``, so it is never passed on again.
/// Other replicas are verified against the cluster CA (``HTTPReplicaFetcher``). A replica that cannot be reached is a
/// 503 naming it and the runner; the caller's token is never logged nor put in an error.
extension RunLogRoutes {
    /// What a request passed on to another replica asks for.
    struct Forwarding: Sendable {
        var info: KindInfo
        var name: String
        var runner: String?
        var isFollowing: Bool
        /// The caller's `Authorization` header, passed on as it came. Secret: never logged.
        var authorization: String?

        /// The path and query of the `log` subresource for `runner` (every runner when nil).
        func pathAndQuery(runner: String?, isFollowing: Bool) -> String {
            var components = URLComponents()
            components.path = "/apis/\(API.group)/\(API.version)/\(info.plural)/\(name)/log"
            var items: [URLQueryItem] = []
            if let runner { items.append(URLQueryItem(name: "runner", value: runner)) }
            if isFollowing { items.append(URLQueryItem(name: "follow", value: "true")) }
            components.queryItems = items.isEmpty ? nil : items
            return components.string ?? components.path
        }

        /// What is read from `replica`, for errors: one runner's output or the runners it holds.
        func what(on replica: String, runner: String?) -> String {
            let run = "\(info.plural).\(API.group) \"\(name)\""
            return runner.map { "the output of runner \"\($0)\" of \(run) from replica \(replica)" }
                ?? "the output of \(run) held by replica \(replica)"
        }
    }

    /// Opens `GET` of the `log` subresource on `replica`; an unreachable replica is a 503 naming it.
    private func openLog(_ forwarding: Forwarding, on replica: String, runner: String?, isFollowing: Bool)
        async throws(APIError) -> ReplicaResponse
    {
        guard let replicas else { throw APIError(.internalError, "no other controller replica is known") }
        do {
            return try await replicas.fetcher.get(
                replica: replica, pathAndQuery: forwarding.pathAndQuery(runner: runner, isFollowing: isFollowing),
                authorization: forwarding.authorization, proxiedBy: replicas.url ?? "")
        } catch {
            throw APIError(
                .serviceUnavailable,
                "cannot read \(forwarding.what(on: replica, runner: runner)): \(error); that replica holds it, so "
                    + "it must be up and reachable from this one", kind: forwarding.info.plural, name: forwarding.name)
        }
    }

    /// The whole request, answered by `replica`: its status, content type and body, streamed as they come.
    func proxy(_ forwarding: Forwarding, to replica: String) async throws(APIError) -> Response {
        let answer = try await openLog(
            forwarding, on: replica, runner: forwarding.runner, isFollowing: forwarding.isFollowing)
        let note = Self.lostNote(forwarding.what(on: replica, runner: forwarding.runner))
        return Response(
            status: answer.status, headers: [.contentType: answer.contentType ?? "text/plain; charset=utf-8"],
            body: ResponseBody { writer in
                do {
                    for try await chunk in answer.body { try await writer.write(chunk) }
                } catch {
                    // Cut off midway: say so in the text, then end the answer abnormally so the caller sees an error.
                    if !(error is CancellationError) { try? await writer.write(ByteBuffer(bytes: note(error))) }
                    throw error
                }
                try await writer.finish(nil)
            })
    }

    /// Every runner's stored output: this replica's runners, then each other replica's. Every other replica is asked
    /// before anything is sent, so one that cannot be reached is a 503 rather than a silently shorter log.
    func merged(_ forwarding: Forwarding, uid: String, plan: RunLogPlan, others: [String]) async throws(APIError)
        -> Response
    {
        var answers: [ReplicaResponse] = []
        for replica in others {
            let answer = try await openLog(forwarding, on: replica, runner: nil, isFollowing: false)
            switch answer.status {
            case .ok: answers.append(answer)
            // Its output was dropped there (the run was not kept), or the run is gone meanwhile.
            case .notFound: continue
            default:
                throw APIError(
                    .serviceUnavailable,
                    "cannot read \(forwarding.what(on: replica, runner: nil)): it answered \(answer.status.code)",
                    kind: forwarding.info.plural, name: forwarding.name)
            }
        }
        let runners = output.runners(run: uid).filter(plan.servesHere)
        let (output, others) = (self.output, answers)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody { writer in
                for name in runners {
                    let text = RunLogFormatter.text(of: output.outputs(run: uid, runner: name), showsRunner: true)
                    if !text.isEmpty { try await writer.write(ByteBuffer(bytes: text)) }
                }
                for answer in others {
                    for try await chunk in answer.body { try await writer.write(chunk) }
                }
                try await writer.finish(nil)
            })
    }

    /// Follows every runner: this replica's output as it comes, and each replica the run names as holding output
    /// (asked once, when first named), whole lines interleaved, until the run is over.
    func followMerged(
        _ forwarding: Forwarding, object: JSONValue, uid: String, plan: RunLogPlan, others: [String]
    ) async throws(APIError) -> Response {
        let events = try await watch(info: forwarding.info, object: object)
        let isOverAlready = RemoteRunSummary.isOver(object)
        if isOverAlready { output.complete(run: uid) }
        let chunks = output.followEvents(run: uid, runner: nil)
        let routes = self
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody { writer in
                let (lines, sink) = AsyncStream<[UInt8]>.makeStream()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        await withTaskGroup(of: Void.self) { producers in
                            producers.addTask {
                                var formatter = RunLogFormatter(showsRunner: true)
                                for await event in chunks where plan.servesHere(event.runner) {
                                    let bytes = formatter.format(event)
                                    if !bytes.isEmpty { sink.yield(bytes) }
                                }
                                let rest = formatter.flush()
                                if !rest.isEmpty { sink.yield(rest) }
                            }
                            producers.addTask {
                                await routes.relayOthers(
                                    forwarding, initial: others, plan: plan, uid: uid,
                                    events: isOverAlready ? nil : events, into: sink)
                            }
                        }
                        sink.finish()
                    }
                    for await line in lines { try await writer.write(ByteBuffer(bytes: line)) }
                    try await group.waitForAll()
                }
                try await writer.finish(nil)
            })
    }

    /// Relays the followed output of `initial` and of each replica the run names later, until the run is over (when
    /// `events` is nil, it is over already) and every relay has ended; ends this replica's followers of the run then.
    private func relayOthers(
        _ forwarding: Forwarding, initial: [String], plan: RunLogPlan, uid: String,
        events: AsyncThrowingStream<StoreEvent, any Error>?, into sink: AsyncStream<[UInt8]>.Continuation
    ) async {
        await withTaskGroup(of: Void.self) { relays in
            var asked = Set<String>()
            func ask(_ replicas: [String]) {
                for replica in replicas where asked.insert(replica).inserted {
                    relays.addTask { await self.relay(forwarding, from: replica, into: sink) }
                }
            }
            ask(initial)
            defer { output.complete(run: uid) }
            guard let events else { return }
            do {
                for try await event in events where event.object.name == forwarding.name {
                    guard event.type != .deleted, let value = try? JSONValue.parse(event.object.value),
                        value["metadata"]?["uid"]?.stringValue == uid
                    else { return }
                    var seen = plan
                    seen.holders = RunLogPlan.holders(of: value)
                    if case .merge(let others) = seen.source(runner: nil) { ask(others) }
                    if RemoteRunSummary.isOver(value) { return }
                }
            } catch {
                let run = "\(forwarding.info.plural).\(API.group) \"\(forwarding.name)\""
                sink.yield(Self.lostNote("the changes of \(run)")(error))
            }
        }
    }

    /// Relays `replica`'s followed output of the run (the runners it holds) into `sink`, whole lines at a time.
    private func relay(
        _ forwarding: Forwarding, from replica: String, into sink: AsyncStream<[UInt8]>.Continuation
    ) async {
        let what = forwarding.what(on: replica, runner: nil)
        do {
            let answer = try await openLog(forwarding, on: replica, runner: nil, isFollowing: true)
            guard answer.status == .ok else {
                // Not found there: its output was dropped, or the run is gone meanwhile.
                if answer.status != .notFound {
                    sink.yield(Array("--- cannot read \(what): it answered \(answer.status.code) ---\n".utf8))
                }
                return
            }
            var pending: [UInt8] = []
            for try await chunk in answer.body {
                pending += chunk.readableBytesView
                if let end = pending.lastIndex(of: 0x0A) {
                    sink.yield(Array(pending[...end]))
                    pending.removeSubrange(...end)
                }
            }
            if !pending.isEmpty { sink.yield(pending + [0x0A]) }
        } catch is CancellationError {
            return
        } catch let error as APIError {
            sink.yield(Array("--- \(error.message) ---\n".utf8))
        } catch {
            sink.yield(Self.lostNote(what)(error))
        }
    }

    /// The line that stands where output stopped coming because `what` could not be read further.
    static func lostNote(_ what: String) -> @Sendable (any Error) -> [UInt8] {
        { error in Array("--- stopped reading \(what): \(error) ---\n".utf8) }
    }

    /// Waits until the run names the replica holding `runner`'s output, the runner or the run is over, or the run is
    /// deleted or replaced; returns the run as last seen.
    func awaitHolder(info: KindInfo, object: JSONValue, runner: String) async throws(APIError) -> JSONValue {
        let events = try await watch(info: info, object: object)
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        let uid = object["metadata"]?["uid"]?.stringValue
        do {
            for try await event in events where event.object.name == name {
                guard event.type != .deleted, let value = try? JSONValue.parse(event.object.value),
                    value["metadata"]?["uid"]?.stringValue == uid
                else { return object }
                if RunLogPlan.holders(of: value)[runner] != nil || RemoteRunSummary.isOver(value)
                    || Self.isFinal(runner, in: value)
                {
                    return value
                }
            }
        } catch {
            throw APIError(.serviceUnavailable, "cannot watch \(info.plural).\(API.group) \"\(name)\": \(error)")
        }
        return object
    }
}
