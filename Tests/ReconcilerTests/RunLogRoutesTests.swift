import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Resources
import SteadyTesting
import Testing

@testable import Reconciler

/// `GET /apis/steady.dev/v1/remoteruns/{name}/log`, in-process.
@Suite(.timeLimit(.minutes(2))) struct RunLogRoutesTests {
    static let token = "test-admin-token"
    static let agentToken = "agent-web-1"
    static let runPath = "/apis/steady.dev/v1/remoteruns"

    /// The admin token, and one agent's token for runner web-1.
    struct Tokens: Authenticating {
        func identity(forToken token: String) async -> Identity? {
            switch token {
            case RunLogRoutesTests.token: .admin
            case RunLogRoutesTests.agentToken: .runner("web-1")
            default: nil
            }
        }
    }

    /// Runs `body` against the API in-process; with `replicas`, as one of several controller replicas.
    func withAPI(
        replicas: ReplicaPeers? = nil,
        _ body: @Sendable (any TestClientProtocol, ObjectService, RunOutputStore) async throws -> Void
    ) async throws {
        let fixture = try StoreFixture()
        let directory = try TemporaryDirectory(prefix: "steady-run-log")
        defer {
            fixture.remove()
            directory.remove()
        }
        let objects = ObjectService(store: fixture.store)
        let output = RunOutputStore(directory: directory.url, limitPerRunner: 100)
        let server = APIServer(
            objects: objects, authenticator: Tokens(),
            configuration: .init(host: "127.0.0.1", port: 0, tls: nil, watchLimits: .init(maximumSeconds: 30)),
            runOutput: output, replicas: replicas, logger: Logger(label: "test"))
        let app = Application(router: server.makeRouter())
        try await app.test(.router) { client in try await body(client, objects, output) }
    }

    func get(_ client: any TestClientProtocol, _ uri: String, token: String = RunLogRoutesTests.token) async throws
        -> (status: Int, contentType: String?, text: String)
    {
        try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
            (Int(response.status.code), response.headers[.contentType], String(buffer: response.body))
        }
    }

    /// Creates run `name` targeting web-1 and web-2 with results in `phase`; returns its uid.
    func createRun(_ objects: ObjectService, _ name: String, phase: String = "Running") async throws -> String {
        let run: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "RemoteRun", "metadata": ["name": .string(name)],
            "spec": ["target": ["runners": ["web-1", "web-2"]]],
        ]
        let created = try await objects.create(Kinds.remoteRun, body: run, options: WriteOptions())
        try await setPhase(objects, name, phase)
        return try #require(created["metadata"]?["uid"]?.stringValue)
    }

    func setPhase(_ objects: ObjectService, _ name: String, _ phase: String) async throws {
        let result: (String) -> JSONValue = { ["runner": .string($0), "phase": .string(phase)] }
        _ = try await objects.patch(
            Kinds.remoteRun, name: name,
            patch: .merge(["status": ["phase": .string(phase), "results": [result("web-1"), result("web-2")]]]),
            subresource: "status", options: WriteOptions())
    }

    @Test func theLogPrefixesRunnersMarksStderrAndTheDroppedMiddle() async throws {
        try await withAPI { client, objects, output in
            let uid = try await createRun(objects, "nightly")
            output.append(run: uid, runner: "web-1", stream: .stdout, bytes: Array("hello\npartial".utf8))
            output.append(run: uid, runner: "web-1", stream: .stderr, bytes: Array("oops\n".utf8))
            output.append(
                run: uid, runner: "web-2", stream: .stdout,
                bytes: Array(String(repeating: "x", count: 199).utf8) + [0x0A])

            let all = try await get(client, "\(Self.runPath)/nightly/log")
            #expect(all.status == 200)
            #expect(all.contentType == "text/plain; charset=utf-8")
            let x50 = String(repeating: "x", count: 50)
            #expect(
                all.text == """
                    web-1 | hello
                    web-1 (stderr) | oops
                    web-1 | partial
                    web-2 | \(x50)
                    web-2 | --- 100 bytes of output dropped ---
                    web-2 | \(String(repeating: "x", count: 49))

                    """)
            let one = try await get(client, "\(Self.runPath)/nightly/log?runner=web-1")
            #expect(one.text == "hello\n(stderr) | oops\npartial\n")
            let quiet = try await get(client, "\(Self.runPath)/nightly/log?runner=web-2&follow=false")
            #expect(quiet.text.hasPrefix(x50 + "\n--- 100 bytes"))
        }
    }

    @Test func unknownRunsAndRunnersAreNotFoundAndAgentsAreForbidden() async throws {
        try await withAPI { client, objects, _ in
            _ = try await createRun(objects, "nightly")
            let missing = try await get(client, "\(Self.runPath)/nope/log")
            #expect(missing.status == 404)
            #expect(try JSONValue.parse(Data(missing.text.utf8))["kind"] == "Status")
            let stranger = try await get(client, "\(Self.runPath)/nightly/log?runner=db-9")
            #expect(stranger.status == 404)
            #expect(stranger.text.contains("has no runner \\\"db-9\\\""))
            let agent = try await get(client, "\(Self.runPath)/nightly/log?runner=web-1", token: Self.agentToken)
            #expect(agent.status == 403)
            #expect(try JSONValue.parse(Data(agent.text.utf8))["reason"] == "Forbidden")
            let typo = try await get(client, "\(Self.runPath)/nightly/log?follow=yes")
            #expect(typo.status == 400)
            #expect(typo.text.contains("query parameter follow"))
            let routeLog = try await get(client, "/apis/steady.dev/v1/routes/x/log")
            #expect(routeLog.status == 404)
            // The other paths of remoteruns still reach the object routes.
            #expect(try await get(client, "\(Self.runPath)/nightly").status == 200)
            #expect(try await get(client, "\(Self.runPath)/nightly/status").status == 200)
            #expect(try await get(client, Self.runPath).status == 200)
        }
    }

    @Test func followStreamsLiveOutputUntilTheRunIsOver() async throws {
        try await withAPI { client, objects, output in
            let uid = try await createRun(objects, "nightly")
            output.append(run: uid, runner: "web-1", stream: .stdout, bytes: Array("stored\n".utf8))
            async let followed = get(client, "\(Self.runPath)/nightly/log?follow=true")
            while output.followerCount(run: uid) == 0 { await Task.yield() }
            output.append(run: uid, runner: "web-2", stream: .stdout, bytes: Array("live\n".utf8))
            output.append(run: uid, runner: "web-1", stream: .stdout, bytes: Array("unfinished".utf8))
            output.finish(run: uid, runner: "web-1")
            // One runner finishing does not end a follow of the whole run; the run ending does.
            try await setPhase(objects, "nightly", "Succeeded")
            let text = try await followed.text
            #expect(text == "web-1 | stored\nweb-2 | live\nweb-1 | unfinished\n")

            // A run already over: the stored output, then the end.
            let after = try await get(client, "\(Self.runPath)/nightly/log?follow=true&runner=web-2")
            #expect(after.text == "live\n")
        }
    }

    @Test func aRunnersLogFollowsItsScheduledRunWhileItGoes() async throws {
        try await withAPI { client, objects, output in
            let runner: JSONValue = [
                "apiVersion": "steady.dev/v1", "kind": "Runner", "metadata": ["name": "web-1"], "spec": [:],
            ]
            _ = try await objects.create(Kinds.runner, body: runner, options: WriteOptions())
            func setLastRun(_ phase: String) async throws {
                _ = try await objects.patch(
                    Kinds.runner, name: "web-1", patch: .merge(["status": ["lastRun": ["phase": .string(phase)]]]),
                    subresource: "status", options: WriteOptions())
            }
            let run = ScheduledRunOutput.run(of: "web-1")
            let path = "/apis/steady.dev/v1/runners/web-1/log?follow=true"
            try await setLastRun("Running")
            output.append(run: run, runner: "web-1", stream: .stdout, bytes: Array("stored\n".utf8))
            async let followed = get(client, path)
            while output.followerCount(run: run) == 0 { await Task.yield() }
            output.append(run: run, runner: "web-1", stream: .stdout, bytes: Array("live\n".utf8))
            // The run's result arrives: the follow ends.
            output.finish(run: run, runner: "web-1")
            #expect(try await followed.text == "stored\nlive\n")

            // Its lastRun shows it ended (the result did not come on the stream): the follow ends too.
            output.delete(run: run)
            output.append(run: run, runner: "web-1", stream: .stdout, bytes: Array("next\n".utf8))
            async let again = get(client, path)
            while output.followerCount(run: run) == 0 { await Task.yield() }
            try await setLastRun("Succeeded")
            #expect(try await again.text == "next\n")

            // Over already: what is stored, at once.
            #expect(try await get(client, path).text == "next\n")
        }
    }

    @Test func aLineWithoutNewlineIsCutSoItsMemoryIsBounded() {
        var formatter = RunLogFormatter(showsRunner: true)
        let long = [UInt8](repeating: UInt8(ascii: "y"), count: RunLogFormatter.maximumLineLength + 10)
        let cut = formatter.feed(runner: "web-1", stream: .stdout, bytes: long)
        #expect(cut == Array("web-1 | ".utf8) + long.prefix(RunLogFormatter.maximumLineLength) + [0x0A])
        #expect(formatter.flush() == Array("web-1 | yyyyyyyyyy\n".utf8))
        #expect(formatter.flush().isEmpty)
    }
}
