import Foundation
import Hummingbird
import Logging
import Prometheus
import Resources
import Routing
import SteadyTesting
import Synchronization
import Testing

@testable import Events

/// The pipeline in-process, on a real SQLite file and a real HTTP receiver on loopback: what actions send, and that
/// attempts finishing together are each recorded once.
@Suite(.timeLimit(.minutes(2))) struct EventPipelineTests {
    /// A receiver on loopback that records each request's method and body.
    final class Receiver: Sendable {
        /// What the handler shares with the test.
        final class Requests: Sendable {
            let values = Mutex<[(method: String, body: String)]>([])
        }

        let requests = Requests()
        let port: Int
        private let task: Task<Void, any Error>

        init() async throws {
            let received = requests
            let router = Router()
            let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
                var request = request
                let body = try await request.collectBody(upTo: 1 << 20)
                received.values.withLock { $0.append((request.method.rawValue, String(buffer: body))) }
                return Response(status: .ok)
            }
            router.post("/hook", use: handler)
            router.put("/hook", use: handler)
            let bound = AsyncStream<Int>.makeStream()
            let app = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { channel in bound.continuation.yield(channel.localAddress?.port ?? 0) },
                logger: Self.quiet)
            task = Task { try await app.runService(gracefulShutdownSignals: []) }
            var ports = bound.stream.makeAsyncIterator()
            port = await ports.next() ?? 0
        }

        var bodies: [String] { requests.values.withLock { $0.map(\.body) } }

        func stop() { task.cancel() }

        static var quiet: Logger {
            var logger = Logger(label: "events-test")
            logger.logLevel = .critical
            return logger
        }
    }

    /// A pipeline with the default limits over a fresh store in `directory`, not running.
    static func pipelineNotRunning(in directory: TemporaryDirectory) throws -> (EventPipeline, EventStore) {
        let store = try EventStore(path: directory.file("events.db").path)
        let pipeline = EventPipeline(
            configuration: .init(location: "controller"), store: store, httpClient: EventPipeline.sharedHTTPClient,
            metrics: EventMetrics(registry: PrometheusCollectorRegistry()), logger: Receiver.quiet)
        return (pipeline, store)
    }

    /// Opens a pipeline over a fresh store with the given objects, runs `body` while it runs, then stops it.
    func withPipeline(
        actions: [String: JSONValue], routes: [String: JSONValue], templates: [String: JSONValue] = [:],
        _ body: (EventPipeline) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory(prefix: "steady-pipeline")
        defer { directory.remove() }
        let store = try EventStore(path: directory.file("events.db").path)
        defer { store.close() }
        let pipeline = EventPipeline(
            configuration: .init(location: "controller", actionConcurrency: 4, actionBacklog: 64),
            store: store, httpClient: EventPipeline.sharedHTTPClient,
            metrics: EventMetrics(registry: PrometheusCollectorRegistry()), logger: Receiver.quiet)
        let table = RouteTable.build(
            revision: 1, routes: routes, actions: actions, templates: templates, secrets: [:], isLocal: { _ in true },
            compiled: CompiledCache())
        #expect(table.problems.isEmpty, "\(table.problems)")
        pipeline.update(table)
        let running = Task { try await pipeline.run() }
        defer { running.cancel() }
        try await body(pipeline)
        running.cancel()
        _ = try? await running.value
    }

    /// Waits (bounded by the suite's time limit) until `condition` holds.
    func eventually(_ condition: () throws -> Bool) async throws {
        while try !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }

    static func object(_ spec: JSONValue) -> JSONValue { ["spec": spec] }

    @Test func anHTTPActionSendsItsBodyTemplateRenderedOverTheEvent() async throws {
        let receiver = try await Receiver()
        defer { receiver.stop() }
        let action = Self.object([
            "type": "http",
            "http": [
                "url": .string("http://127.0.0.1:\(receiver.port)/hook"), "method": "PUT",
                "body": #"{"scan":"{{input.id}}","summary":"{{input.text}}"}"#,
            ],
        ])
        try await withPipeline(
            actions: ["put": action], routes: ["all": Self.object(["actions": ["put"]])]
        ) { pipeline in
            _ = try await pipeline.accept(Array(#"{"id":"a1","text":"x < y & \"z\""}"#.utf8))
            try await eventually { !receiver.bodies.isEmpty }
        }
        // Rendered as text: the event's characters are not HTML-escaped.
        #expect(receiver.bodies == [#"{"scan":"a1","summary":"x < y & "z""}"#])
        #expect(receiver.requests.values.withLock { $0.map(\.method) } == ["PUT"])
    }

    @Test func anEmailSubjectWithTagsIsRenderedOverTheEvent() async throws {
        let email = Self.object([
            "type": "email",
            "email": [
                "host": "127.0.0.1", "port": 1, "from": "steady@example.com", "to": ["ops@example.com"],
                "subject": "{{input.severity}}: {{input.image}}",
            ],
        ])
        let template = Self.object(["type": "mustache", "title": "template title", "body": "{{input.image}}"])
        let route = Self.object(["actions": ["mail"], "template": "scan"])
        let directory = try TemporaryDirectory(prefix: "steady-pipeline")
        defer { directory.remove() }
        let (pipeline, store) = try Self.pipelineNotRunning(in: directory)
        defer { store.close() }
        pipeline.update(
            RouteTable.build(
                revision: 1, routes: ["scans": route], actions: ["mail": email], templates: ["scan": template],
                secrets: [:], isLocal: { _ in true }, compiled: CompiledCache()))
        try store.enqueue([
            EventStore.NewEvent(
                id: "e1", receivedAt: 1, body: Array(#"{"severity":"CRITICAL","image":"alpine:3.18"}"#.utf8))
        ])
        try pipeline.route(try store.queuedEvents(limit: 10))
        let delivery = try #require(try store.readyDeliveries(action: "mail", limit: 10, excluding: []).first)
        #expect(delivery.message.title == "CRITICAL: alpine:3.18")
        #expect(delivery.message.body == Array("alpine:3.18".utf8))
        let spec = try StrictDecoder().decode(ActionSpec.self, from: email["spec"] ?? [:])
        let emailSpec = try #require(spec.email)
        #expect(DeliveryTransports.subject(of: delivery, email: emailSpec) == "CRITICAL: alpine:3.18")
        // A subject without tags is used as written; none at all falls back to the template's title.
        var plain = emailSpec
        plain.subject = "scan results"
        #expect(DeliveryTransports.subject(of: delivery, email: plain) == "scan results")
        plain.subject = nil
        var titled = delivery
        titled.message.title = "template title"
        #expect(DeliveryTransports.subject(of: titled, email: plain) == "template title")
    }

    @Test func attemptsFinishingTogetherAreEachRecordedOnce() async throws {
        let receiver = try await Receiver()
        defer { receiver.stop() }
        let action = Self.object([
            "type": "webhook", "webhook": ["url": .string("http://127.0.0.1:\(receiver.port)/hook")],
        ])
        let count = 300
        try await withPipeline(
            actions: ["hook": action], routes: ["all": Self.object(["actions": ["hook"]])]
        ) { pipeline in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    group.addTask { _ = try await pipeline.accept(Array(#"{"seq":\#(index)}"#.utf8)) }
                }
                try await group.waitForAll()
            }
            try await eventually { pipeline.counters.actions["hook"]?.delivered ?? 0 >= Int64(count) }
            try await eventually { try pipeline.store.depths().outbox == 0 }
            let executions = try pipeline.store.executions(action: "hook", limit: 10_000)
            #expect(executions.count == count)
            #expect(Set(executions.map(\.deliveryID)).count == count)
            #expect(executions.allSatisfy { $0.result == .succeeded && $0.attempt == 1 })
            #expect(pipeline.counters.routes["all"]?.matched == Int64(count))
            #expect(pipeline.pendingByAction["hook"] == 0)
        }
        let received = Set(receiver.bodies)
        #expect(receiver.bodies.count == count)
        #expect(received == Set((0..<count).map { #"{"seq":\#($0)}"# }))
    }

    /// The counters callback is called on every batch routed, delivered or reported. Stored as a bare closure in a
    /// `Mutex`, each read wrapped it in two more reabstraction thunks, so the controller spent a third of its CPU in
    /// thunk chains after a few minutes of events. The callback's frame must sit as deep on the second call as on
    /// the first, however many reads came between.
    @Test func aRefillThatReadTheOutboxBeforeRowsSpilledLeavesTheLaneSpilled() {
        var lane = EventPipeline.Lane()
        lane.markSpilled()
        let spillsBefore = lane.spills
        // While the refill reads the outbox, the intake writer finds the queue full and leaves rows there.
        lane.markSpilled()
        lane.refilled(count: 3, limit: 1_000, spillsBefore: spillsBefore)
        #expect(lane.hasSpilled)
        // A refill that began after the last spill and read fewer than its limit found every row.
        lane.refilled(count: 3, limit: 1_000, spillsBefore: lane.spills)
        #expect(!lane.hasSpilled)
        lane.refilled(count: 1_000, limit: 1_000, spillsBefore: lane.spills)
        #expect(lane.hasSpilled)
    }

    @Test func theCountersCallbackIsNotWrappedAgainByEachRead() throws {
        let directory = try TemporaryDirectory(prefix: "steady-pipeline")
        defer { directory.remove() }
        let (pipeline, store) = try Self.pipelineNotRunning(in: directory)
        defer { store.close() }
        let depths = Mutex<[UInt]>([])
        pipeline.onCountersChanged {
            var marker = 0
            let address = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
            depths.withLock { $0.append(address) }
        }
        let record = ExecutionRecord(
            time: 1, eventID: "e", route: "r", action: "a", location: "runner-1", attempt: 1, result: .succeeded,
            durationMilliseconds: 1, error: nil, deliveryID: "d")
        for _ in 0..<5_000 { pipeline.recordReported([record]) }
        let addresses = depths.withLock { $0 }
        #expect(addresses.count == 5_000)
        let (first, last) = (addresses.first ?? 0, addresses.last ?? 0)
        // A stack grows down: a deeper call has a lower address. A few frames of slack; 5,000 reads of the old
        // closure made it 10,000 thunk frames (over 100 KB) deeper.
        #expect(first >= last && first - last < 4_096, "the callback ran \(Int(first) - Int(last)) bytes deeper")
    }

    /// A runner's report goes through the writer with everything else: durable when `acceptReport` returns, counted,
    /// readable through the API's reads, and not reported again (the controller has no upstream).
    @Test func aRunnersReportIsWrittenByTheWriterCountedAndNotReportedAgain() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-pipeline")
        defer { directory.remove() }
        let (pipeline, store) = try Self.pipelineNotRunning(in: directory)
        defer { store.close() }
        func record(_ delivery: String, _ result: ExecutionRecord.Result) -> ExecutionRecord {
            ExecutionRecord(
                time: 1, eventID: "e", route: "r", action: "a", location: "runner-1", attempt: 1, result: result,
                durationMilliseconds: 1, error: result == .failed ? "refused" : nil, deliveryID: delivery)
        }
        try await pipeline.acceptReport([record("d1", .succeeded), record("d2", .failed), record("d3", .succeeded)])
        let stored = try await pipeline.executions(action: "a")
        #expect(stored.map(\.deliveryID) == ["d3", "d2", "d1"])
        #expect(try await pipeline.execution(named: "d2-1")?.error == "refused")
        #expect(try store.unreportedExecutions(limit: 10).isEmpty)
        let counters = pipeline.counters
        #expect(counters.routes["r"]?.delivered == 2)
        #expect(counters.actions["a"]?.failed == 1)
        #expect(counters.actions["a"]?.lastError == "refused")
    }
    /// With a route table in place, an accepted event is routed in the transaction that makes it durable: its
    /// delivery is in the outbox when `accept` returns, and no queue row was written for the router to read back.
    /// Before a table arrives it waits in the queue, and is routed from there once one does.
    @Test func anEventIsRoutedAsItIsTakenInOnceATableIsInPlace() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-pipeline")
        defer { directory.remove() }
        let (pipeline, store) = try Self.pipelineNotRunning(in: directory)
        defer { store.close() }
        try pipeline.load()
        _ = try await pipeline.accept(Array(#"{"seq":1}"#.utf8))
        #expect(try store.depths().events == 1)
        #expect(try store.depths().outbox == 0)
        let action = Self.object(["type": "file", "file": ["path": .string(directory.file("out.ndjson").path)]])
        pipeline.update(
            RouteTable.build(
                revision: 1, routes: ["all": Self.object(["actions": ["out"]])], actions: ["out": action],
                templates: [:], secrets: [:], isLocal: { _ in true }, compiled: CompiledCache()))
        try pipeline.route(try store.queuedEvents(limit: 10))
        #expect(try store.depths().events == 0)
        let id = try await pipeline.accept(Array(#"{"seq":2}"#.utf8))
        #expect(try store.depths().events == 0)
        // Event ids are time-ordered (version 7), so the outbox's index by event grows at its end.
        #expect(Array(id)[14] == "7", "\(id)")
        let bodies = try store.readyDeliveries(action: "out", limit: 10, excluding: []).map {
            String(decoding: $0.message.body, as: UTF8.self)
        }
        #expect(bodies == [#"{"seq":1}"#, #"{"seq":2}"#])
        #expect(pipeline.counters.routes["all"]?.matched == 2)
    }

    /// Retention drops records older than its age and all but the newest N, across several steps, and keeps the
    /// rest: here rows 1–700 go by count and rows 1,001–1,200 and 2,400 by age, of 2,500.
    @Test func retentionDropsOldRecordsAndAllButTheNewestInSteps() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-pipeline")
        defer { directory.remove() }
        let store = try EventStore(path: directory.file("events.db").path)
        defer { store.close() }
        let pipeline = EventPipeline(
            configuration: .init(location: "controller", executionRetention: .seconds(3600), executionLimit: 1_800),
            store: store, httpClient: EventPipeline.sharedHTTPClient,
            metrics: EventMetrics(registry: PrometheusCollectorRegistry()), logger: Receiver.quiet,
            now: { 10_000_000 })
        let old: Set<Int> = Set(1_001...1_200).union([2_400])
        try await pipeline.acceptReport(
            (1...2_500).map { row in
                ExecutionRecord(
                    time: old.contains(row) ? 1_000 : 9_000_000, eventID: "e\(row)", route: "r", action: "a",
                    location: "controller", attempt: 1, result: .succeeded, durationMilliseconds: 1, error: nil,
                    deliveryID: "d\(row)")
            })
        #expect(EventPipeline.pruneStep < 2_500, "the prune must take several steps")
        try await pipeline.pruneExecutionsOnce()
        let kept = Set(try store.executions(limit: 10_000).map(\.eventID))
        let expected = Set((701...2_500).filter { !old.contains($0) }.map { "e\($0)" })
        #expect(kept == expected)
        try await pipeline.pruneExecutionsOnce()
        #expect(try store.executions(limit: 10_000).count == expected.count)
    }

    /// A file action's line is one line of JSON whatever the message: printable JSON as sent, other JSON rewritten
    /// onto one line, anything else as a string.
    @Test func aFileLineIsOneLineOfJSONWhateverTheMessage() throws {
        func line(_ body: String, title: String? = nil) throws -> (text: String, value: JSONValue) {
            let delivery = Delivery(
                rowID: 1, deliveryID: "d1", eventID: "e1", route: "r", action: "a",
                message: RenderedMessage(title: title, body: Array(body.utf8)))
            let bytes = DeliveryTransports.fileLine(delivery)
            #expect(bytes.last == 0x0A)
            #expect(bytes.dropLast().allSatisfy { $0 != 0x0A && $0 != 0x0D })
            return (String(decoding: bytes.dropLast(), as: UTF8.self), try JSONValue.parse(Data(bytes)))
        }
        let sent = try line(#"{"z":1.50,"a":[true,null]}"#)
        #expect(sent.text == #"{"action":"a","deliveryId":"d1","eventId":"e1","message":{"z":1.50,"a":[true,null]},"route":"r"}"#)
        let pretty = try line("{\n  \"name\": \"caf\u{e9}\"\n}", title: "t")
        #expect(pretty.value["message"] == ["name": "caf\u{e9}"])
        #expect(pretty.value["title"] == "t")
        let text = try line("not json\r\n")
        #expect(text.value["message"] == "not json\r\n")
    }
}
