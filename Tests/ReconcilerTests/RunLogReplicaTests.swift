import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Resources
import Synchronization
import Testing

@testable import Reconciler

/// A ``ReplicaFetching`` that records each request and answers from canned text per replica.
final class FakeReplicaFetcher: ReplicaFetching {
    struct Call: Sendable, Equatable {
        var replica: String
        var pathAndQuery: String
        var authorization: String?
        var proxiedBy: String
    }

    enum Answer: Sendable {
        case text(status: Int, String)
        case unreachable
    }

    struct Unreachable: Error, CustomStringConvertible {
        var description: String { "connection refused" }
    }

    private let state: Mutex<(calls: [Call], answers: [String: Answer])>

    init(_ answers: [String: Answer]) {
        state = Mutex(([], answers))
    }

    var calls: [Call] { state.withLock { $0.calls } }

    func get(replica: String, pathAndQuery: String, authorization: String?, proxiedBy: String) async throws
        -> ReplicaResponse
    {
        let answer = state.withLock { state in
            state.calls.append(
                Call(replica: replica, pathAndQuery: pathAndQuery, authorization: authorization, proxiedBy: proxiedBy))
            return state.answers[replica]
        }
        guard case .text(let status, let text) = answer else { throw Unreachable() }
        let body = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            continuation.yield(ByteBuffer(string: text))
            continuation.finish()
        }
        return ReplicaResponse(
            status: HTTPResponse.Status(code: status), contentType: "text/plain; charset=utf-8", body: body)
    }
}

/// The `log` subresource on one of several controller replicas, in-process, with the other replicas faked: a
/// runner whose output another replica holds is read through it, with the caller's token; a request another replica
/// passed on is answered here, never passed on again; a holder that cannot be reached is a 503 naming it.
@Suite(.timeLimit(.minutes(2))) struct RunLogReplicaTests {
    static let own = "https://10.0.0.6:7443"
    static let other = "https://10.0.0.5:7443"
    static let path = "\(RunLogRoutesTests.runPath)/nightly/log"
    let routes = RunLogRoutesTests()

    /// Creates run `nightly`: web-1's output on the other replica, web-2's here (`local`, when `output` is given,
    /// and a stale piece of web-1's with `isStale`, as if its agent had moved). Returns its uid.
    func createRun(_ objects: ObjectService, output: RunOutputStore? = nil, isStale: Bool = false) async throws
        -> String
    {
        let uid = try await routes.createRun(objects, "nightly")
        output?.append(run: uid, runner: "web-2", stream: .stdout, bytes: Array("local\n".utf8))
        if isStale { output?.append(run: uid, runner: "web-1", stream: .stdout, bytes: Array("stale\n".utf8)) }
        let results: JSONValue = [
            ["runner": "web-1", "phase": "Running", "outputReplica": .string(Self.other)],
            ["runner": "web-2", "phase": "Running", "outputReplica": .string(Self.own)],
        ]
        _ = try await objects.patch(
            Kinds.remoteRun, name: "nightly", patch: .merge(["status": ["results": results]]), subresource: "status",
            options: WriteOptions())
        return uid
    }

    func get(_ client: any TestClientProtocol, _ uri: String, proxied: Bool = false) async throws
        -> (status: Int, text: String)
    {
        var headers: HTTPFields = [.authorization: "Bearer \(RunLogRoutesTests.token)"]
        if proxied { headers[ReplicaPeers.proxiedHeader] = Self.other }
        return try await client.execute(uri: uri, method: .get, headers: headers) { response in
            (Int(response.status.code), String(buffer: response.body))
        }
    }

    @Test func aRunnerAnotherReplicaHoldsIsReadThroughItWithTheCallersToken() async throws {
        let fetcher = FakeReplicaFetcher([Self.other: .text(status: 200, "from the other replica\n")])
        try await routes.withAPI(replicas: ReplicaPeers(url: Self.own, fetcher: fetcher)) { client, objects, output in
            _ = try await createRun(objects, output: output)

            let remote = try await get(client, "\(Self.path)?runner=web-1")
            #expect(remote.status == 200)
            #expect(remote.text == "from the other replica\n")
            #expect(
                fetcher.calls == [
                    .init(
                        replica: Self.other, pathAndQuery: "\(Self.path)?runner=web-1",
                        authorization: "Bearer \(RunLogRoutesTests.token)", proxiedBy: Self.own)
                ])

            // Held here: answered here, nobody asked.
            #expect(try await get(client, "\(Self.path)?runner=web-2").text == "local\n")
            #expect(fetcher.calls.count == 1)

            // Followed: the follow is passed on too.
            _ = try await get(client, "\(Self.path)?runner=web-1&follow=true")
            #expect(fetcher.calls.last?.pathAndQuery == "\(Self.path)?runner=web-1&follow=true")
        }
    }

    @Test func everyRunnerIsThisReplicasOutputThenTheOtherHoldersOutput() async throws {
        let fetcher = FakeReplicaFetcher([Self.other: .text(status: 200, "web-1 | remote\n")])
        try await routes.withAPI(replicas: ReplicaPeers(url: Self.own, fetcher: fetcher)) { client, objects, output in
            // A stale piece of web-1's output here: its holder's copy is the one shown.
            let uid = try await createRun(objects, output: output, isStale: true)

            let all = try await get(client, Self.path)
            #expect(all.status == 200)
            #expect(all.text == "web-2 | local\nweb-1 | remote\n")
            #expect(fetcher.calls.map(\.pathAndQuery) == [Self.path])

            // Followed: both, interleaved by whole lines, until the run is over.
            async let followed = get(client, "\(Self.path)?follow=true")
            while output.followerCount(run: uid) == 0 { await Task.yield() }
            output.append(run: uid, runner: "web-2", stream: .stdout, bytes: Array("live\n".utf8))
            try await routes.setPhase(objects, "nightly", "Succeeded")
            let lines = try await followed.text.split(separator: "\n").map(String.init)
            #expect(Set(lines) == ["web-2 | local", "web-2 | live", "web-1 | remote"], "\(lines)")
            #expect(lines.count == 3, "\(lines)")
            #expect(fetcher.calls.last?.pathAndQuery == "\(Self.path)?follow=true")
        }
    }

    @Test func aFollowOfEveryRunnerReadsReplicasNamedAfterItStarted() async throws {
        let fetcher = FakeReplicaFetcher([Self.other: .text(status: 200, "web-1 | remote\n")])
        try await routes.withAPI(replicas: ReplicaPeers(url: Self.own, fetcher: fetcher)) { client, objects, output in
            // As `steady run` does: followed from the start, before any runner has started anywhere.
            let uid = try await routes.createRun(objects, "nightly")
            async let followed = get(client, "\(Self.path)?follow=true")
            while output.followerCount(run: uid) == 0 { await Task.yield() }
            #expect(fetcher.calls.isEmpty)
            // web-1 starts on the other replica, web-2 here.
            let results: JSONValue = [
                ["runner": "web-1", "phase": "Running", "outputReplica": .string(Self.other)],
                ["runner": "web-2", "phase": "Running", "outputReplica": .string(Self.own)],
            ]
            _ = try await objects.patch(
                Kinds.remoteRun, name: "nightly", patch: .merge(["status": ["results": results]]),
                subresource: "status", options: WriteOptions())
            while fetcher.calls.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
            output.append(run: uid, runner: "web-2", stream: .stdout, bytes: Array("local\n".utf8))
            try await routes.setPhase(objects, "nightly", "Succeeded")
            let lines = try await followed.text.split(separator: "\n").map(String.init)
            #expect(lines.sorted() == ["web-1 | remote", "web-2 | local"], "\(lines)")
            #expect(fetcher.calls.map(\.pathAndQuery) == ["\(Self.path)?follow=true"])
        }
    }

    @Test func aRequestAnotherReplicaPassedOnIsAnsweredHereAndNeverPassedOnAgain() async throws {
        let fetcher = FakeReplicaFetcher([Self.other: .text(status: 200, "must not be asked\n")])
        try await routes.withAPI(replicas: ReplicaPeers(url: Self.own, fetcher: fetcher)) { client, objects, output in
            _ = try await createRun(objects, output: output, isStale: true)

            // The status says the other replica holds web-1; the request came from it: answered from here.
            let one = try await get(client, "\(Self.path)?runner=web-1", proxied: true)
            #expect(one.status == 200)
            #expect(one.text == "stale\n")
            // Every runner: only those this replica holds, which the asking replica lacks.
            let all = try await get(client, Self.path, proxied: true)
            #expect(all.text == "web-2 | local\n")
            #expect(fetcher.calls.isEmpty)
        }
    }

    @Test func aHolderThatCannotBeReachedIsA503NamingItAndTheRunner() async throws {
        let fetcher = FakeReplicaFetcher([Self.other: .unreachable])
        try await routes.withAPI(replicas: ReplicaPeers(url: Self.own, fetcher: fetcher)) { client, objects, _ in
            _ = try await createRun(objects)
            let one = try await get(client, "\(Self.path)?runner=web-1")
            #expect(one.status == 503)
            let status = try JSONValue.parse(Data(one.text.utf8))
            #expect(status["kind"] == "Status")
            let message = status["message"]?.stringValue ?? ""
            #expect(message.contains(Self.other) && message.contains("runner \"web-1\""), "\(message)")
            #expect(message.contains("connection refused"), "\(message)")
            #expect(!one.text.contains(RunLogRoutesTests.token))

            let all = try await get(client, Self.path)
            #expect(all.status == 503)
            #expect(all.text.contains(Self.other))
        }
    }

    @Test func aRunnersScheduledRunLogIsReadThroughTheReplicaHoldingIt() async throws {
        let fetcher = FakeReplicaFetcher([Self.other: .text(status: 200, "scheduled\n")])
        try await routes.withAPI(replicas: ReplicaPeers(url: Self.own, fetcher: fetcher)) { client, objects, output in
            let runner: JSONValue = [
                "apiVersion": "steady.dev/v1", "kind": "Runner", "metadata": ["name": "web-1"], "spec": [:],
            ]
            _ = try await objects.create(Kinds.runner, body: runner, options: WriteOptions())
            let lastRun: JSONValue = ["phase": "Succeeded", "outputReplica": .string(Self.other)]
            _ = try await objects.patch(
                Kinds.runner, name: "web-1", patch: .merge(["status": ["lastRun": lastRun]]), subresource: "status",
                options: WriteOptions())
            let path = "/apis/steady.dev/v1/runners/web-1/log"
            #expect(try await get(client, path).text == "scheduled\n")
            #expect(fetcher.calls.map(\.pathAndQuery) == [path])
            #expect(fetcher.calls.first?.authorization == "Bearer \(RunLogRoutesTests.token)")

            // Passed on already: answered from here, never passed on again.
            let run = ScheduledRunOutput.run(of: "web-1")
            output.append(run: run, runner: "web-1", stream: .stdout, bytes: Array("here\n".utf8))
            #expect(try await get(client, path, proxied: true).text == "here\n")
            #expect(fetcher.calls.count == 1)
        }
    }

    @Test func aLoneControllerNeverAsksAnotherReplica() async throws {
        let fetcher = FakeReplicaFetcher([:])
        try await routes.withAPI(replicas: ReplicaPeers(url: nil, fetcher: fetcher)) { client, objects, output in
            let uid = try await createRun(objects)
            output.append(run: uid, runner: "web-1", stream: .stdout, bytes: Array("here\n".utf8))
            #expect(try await get(client, "\(Self.path)?runner=web-1").text == "here\n")
            #expect(fetcher.calls.isEmpty)
        }
    }
}
