import Foundation
import Logging
import Prometheus
import SteadyTesting
import Testing

@testable import Events

#if canImport(Glibc)
    import Glibc
#endif

/// The events port in-process, over a real socket: what each request is answered, with and without a token, and
/// what HTTP clients send that a library hides (pipelined requests, `Expect: 100-continue`, HTTP/1.0).
@Suite(.timeLimit(.minutes(2))) struct EventServerTests {
    /// A pipeline (not running: accepted events wait in its queue) and its events port on loopback.
    final class Served: Sendable {
        let directory: TemporaryDirectory
        let store: EventStore
        let port: Int
        private let task: Task<Void, any Error>

        init(token: String? = nil, maxEventBytes: Int = 1 << 20, maxQueuedEvents: Int = 10_000) async throws {
            directory = try TemporaryDirectory(prefix: "steady-events-port")
            store = try EventStore(path: directory.file("events.db").path)
            var logger = Logger(label: "events-port-test")
            logger.logLevel = .critical
            let pipeline = EventPipeline(
                configuration: .init(
                    location: "controller", maxEventBytes: maxEventBytes, maxQueuedEvents: maxQueuedEvents),
                store: store, httpClient: EventPipeline.sharedHTTPClient,
                metrics: EventMetrics(registry: PrometheusCollectorRegistry()), logger: logger)
            let bound = AsyncStream<Int>.makeStream()
            let server = try EventServer(
                configuration: .init(host: "127.0.0.1", port: 0, token: token), pipeline: pipeline
            ) { port in bound.continuation.yield(port) }
            task = Task { try await server.run() }
            var ports = bound.stream.makeAsyncIterator()
            port = await ports.next() ?? 0
        }

        var queued: [String] {
            (try? store.queuedEvents(limit: 100).map { String(decoding: $0.body, as: UTF8.self) }) ?? []
        }

        func stop() async {
            task.cancel()
            _ = try? await task.value
            store.close()
            directory.remove()
        }
    }

    /// A client on a plain socket, which sends exactly the bytes a test gives it. Its reads block, so they run on a
    /// thread of their own, not on one of the few that every test's tasks share.
    final class Connection: @unchecked Sendable {
        let descriptor: Int32

        init(port: Int) throws {
            guard let descriptor = LoopbackSocket.connect(port: port) else { throw POSIXError(.ECONNREFUSED) }
            self.descriptor = descriptor
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(descriptor) }

        func send(_ text: String) {
            let bytes = Array(text.utf8)
            var sent = 0
            while sent < bytes.count {
                let count = bytes[sent...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                guard count > 0 else { return }
                sent += count
            }
        }

        /// Reads until `isComplete` holds for what has arrived, the peer closes, or ten seconds pass.
        func receive(until isComplete: @escaping @Sendable (String) -> Bool = { _ in false }) async -> String {
            await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: self.readAll(until: isComplete)) }
            }
        }

        private func readAll(until isComplete: (String) -> Bool) -> String {
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !isComplete(String(decoding: received, as: UTF8.self)) {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                received += buffer[..<count]
            }
            return String(decoding: received, as: UTF8.self)
        }
    }

    /// Runs `body` with a served pipeline, then stops it, whether or not `body` threw.
    func withServed(
        token: String? = nil, maxEventBytes: Int = 1 << 20, maxQueuedEvents: Int = 10_000,
        _ body: (Served) async throws -> Void
    ) async throws {
        let served = try await Served(token: token, maxEventBytes: maxEventBytes, maxQueuedEvents: maxQueuedEvents)
        do {
            try await body(served)
        } catch {
            await served.stop()
            throw error
        }
        await served.stop()
    }

    static func post(_ body: String, path: String = "/", headers: String = "") -> String {
        "POST \(path) HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\(headers)"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    static func statuses(_ text: String) -> [String] {
        // Each JSON body ends with a newline, so the next status line starts a line of its own.
        text.components(separatedBy: "\n").filter { $0.hasPrefix("HTTP/1.") }.map {
            String($0.split(separator: " ")[1])
        }
    }

    @Test func pipelinedEventsOnOneConnectionAreEachAcceptedInOrder() async throws {
        try await withServed { served in
            let connection = try Connection(port: served.port)
            connection.send(Self.post(#"{"n":1}"#) + Self.post(#"{"n":2}"#, path: "/events?x=1"))
            connection.send(Self.post(#"{"n":3}"#, headers: "Connection: close\r\n"))
            let text = await connection.receive()
            #expect(Self.statuses(text) == ["202", "202", "202"])
            #expect(text.contains("\"id\""))
            #expect(text.lowercased().contains("connection: close"))
            #expect(served.queued == [#"{"n":1}"#, #"{"n":2}"#, #"{"n":3}"#])
        }
    }

    @Test func badInputIsAnsweredWithWhatWasWrongAndNothingIsQueued() async throws {
        try await withServed(maxEventBytes: 64) { served in
            let connection = try Connection(port: served.port)
            connection.send(Self.post("not json"))
            connection.send(Self.post(String(repeating: "x", count: 100)))
            connection.send("GET /events HTTP/1.1\r\nHost: test\r\n\r\n")
            connection.send(Self.post("{}", path: "/elsewhere"))
            connection.send("GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            let text = await connection.receive()
            #expect(Self.statuses(text) == ["400", "413", "405", "404", "200"])
            #expect(text.contains("the body is not JSON"))
            #expect(text.contains("the event is larger than 64 bytes"))
            #expect(text.lowercased().contains("allow: post"))
            #expect(text.hasSuffix("ok"))
            #expect(served.queued.isEmpty)
        }
    }

    @Test func aFullQueueIsAnswered429WithRetryAfter() async throws {
        try await withServed(maxQueuedEvents: 1) { served in
            let connection = try Connection(port: served.port)
            connection.send(Self.post("{}") + Self.post("{}", headers: "Connection: close\r\n"))
            let text = await connection.receive()
            #expect(Self.statuses(text) == ["202", "429"])
            #expect(text.lowercased().contains("retry-after: 1"))
        }
    }

    @Test func aTokenIsRequiredWhenOneIsSet() async throws {
        try await withServed(token: "s3cret") { served in
            let connection = try Connection(port: served.port)
            connection.send(Self.post(#"{"n":1}"#))
            connection.send(Self.post(#"{"n":2}"#, headers: "Authorization: Bearer wrong\r\n"))
            connection.send(Self.post(#"{"n":3}"#, headers: "Authorization: Bearer s3cret\r\nConnection: close\r\n"))
            let text = await connection.receive()
            #expect(Self.statuses(text) == ["401", "401", "202"])
            #expect(!text.contains("s3cret"))
            #expect(served.queued == [#"{"n":3}"#])
        }
    }

    @Test func aClientThatExpectsContinueIsToldToSendItsBodyOrRefusedBeforeIt() async throws {
        try await withServed(maxEventBytes: 64) { served in
            let connection = try Connection(port: served.port)
            connection.send("POST / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n")
            let goAhead = await connection.receive { $0.hasSuffix("\r\n\r\n") }
            #expect(Self.statuses(goAhead) == ["100"])
            connection.send(#"{"n":1}"#)
            #expect(Self.statuses(await connection.receive { $0.contains("\"id\"") }) == ["202"])

            // Too large: refused at once and closed, so the client never sends the body.
            connection.send("POST / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n")
            let refused = await connection.receive()
            #expect(Self.statuses(refused) == ["413"])
            #expect(served.queued == [#"{"n":1}"#])
        }
    }

    @Test func anHTTP10ClientIsAnsweredInHTTP10AndClosedUnlessItAsksToKeepAlive() async throws {
        try await withServed { served in
            let connection = try Connection(port: served.port)
            connection.send("POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}")
            let kept = await connection.receive { $0.contains("\"id\"") && $0.hasSuffix("\n") }
            #expect(kept.hasPrefix("HTTP/1.0 202"))
            #expect(kept.lowercased().contains("connection: keep-alive"))
            connection.send("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}")
            // Without keep-alive the server closes after answering: receive returns at the close.
            #expect(await connection.receive().hasPrefix("HTTP/1.0 202"))
            #expect(served.queued.count == 2)
        }
    }
}
