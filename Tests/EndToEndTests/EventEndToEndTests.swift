import AsyncHTTPClient
import Foundation
import NIOCore
import SteadyTesting
import Testing

/// The event pipeline as a user runs it: a real controller taking events on its events port and its API, routes
/// and actions applied with `apply`, receivers the tests start on loopback.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EventEndToEndTests {
    /// A free TCP port on loopback (bound and released; the controller binds it right after).
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct Answer {
        var status: Int
        var body: String
        var retryAfter: String?
    }

    /// Posts `body` to the events port (or, with a token, to the API's `/events`).
    static func post(_ body: String, port: Int, path: String = "/") async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let text = try await response.body.collect(upTo: 1 << 20)
        return Answer(
            status: Int(response.status.code), body: String(buffer: text),
            retryAfter: response.headers.first(name: "Retry-After"))
    }

    /// The id in a 202 answer.
    static func id(of answer: Answer) -> String? {
        guard let data = answer.body.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["id"] as? String
    }

    static func waitUntil(timeout: Duration = .seconds(30), _ condition: () throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try condition()
    }

    static func startController(eventsPort: Int, extra: [String] = []) throws -> ControllerProcess {
        let controller = try ControllerProcess()
        try controller.start(extraArguments: ["--events-listen", "127.0.0.1:\(eventsPort)"] + extra)
        return controller
    }

    static func action(_ name: String, _ spec: String) -> String {
        """
        apiVersion: steady.dev/v1
        kind: Action
        metadata: {name: \(name)}
        spec: \(spec)
        ---

        """
    }

    static func route(_ name: String, _ spec: String) -> String {
        """
        apiVersion: steady.dev/v1
        kind: Route
        metadata: {name: \(name)}
        spec: \(spec)
        ---

        """
    }

    /// Posts a probe event until the route table holds `route` (a probe that matches it is delivered), and waits
    /// for its `deliveries` to the sink, so that none of them arrives late among the test's own.
    static func waitForRoutes(port: Int, sink: EventSink, probe: String, deliveries: Int = 1) async throws {
        let before = sink.requests.count
        _ = try await post(probe, port: port)
        #expect(
            await waitUntil { sink.requests.count >= before + deliveries }, "the probe event was never delivered")
    }

    @Test func httpWebhookAndFileActionsDeliverEveryEventOnce() async throws {
        let sink = try await EventSink()
        defer { sink.stop() }
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port)
        defer { controller.remove() }
        let file = controller.dataDirectory.file("events.ndjson").path
        try controller.apply(
            Self.action("to-sink", "{type: http, http: {url: '\(sink.url)', method: PUT}}")
                + Self.action("hook", "{type: webhook, webhook: {url: '\(sink.url.replacingOccurrences(of: "hook", with: "webhook"))'}}")
                + Self.action("to-file", "{type: file, file: {path: '\(file)'}}")
                + Self.route("scans", "{input: 'input.kind == \"scan\"', actions: [to-sink, hook, to-file]}"))
        // Wait for the route table: events posted before it exists match nothing.
        // The probe goes to both HTTP actions; counting from before the second arrived counted it as the test's.
        try await Self.waitForRoutes(port: port, sink: sink, probe: #"{"kind": "scan", "n": 0}"#, deliveries: 2)
        let baseline = sink.requests.count
        var ids: [String] = []
        for n in 1...20 {
            let answer = try await Self.post(#"{"kind":"scan","n":\#(n)}"#, port: port)
            #expect(answer.status == 202, "\(answer.body)")
            ids.append(try #require(Self.id(of: answer)))
        }
        _ = try await Self.post(#"{"kind": "other"}"#, port: port)
        #expect(await Self.waitUntil { sink.requests.count >= baseline + 40 }, "\(controller.log())")
        let delivered = sink.requests.dropFirst(baseline)
        #expect(delivered.filter { $0.path == "/hook" }.count == 20)
        #expect(delivered.filter { $0.path == "/webhook" }.count == 20)
        #expect(delivered.allSatisfy { $0.body.contains("\"kind\":\"scan\"") })
        #expect(delivered.filter { $0.path == "/webhook" }.allSatisfy { $0.contentType == "application/json" })
        let deliveryIDs = delivered.compactMap(\.deliveryID)
        #expect(deliveryIDs.count == 40 && Set(deliveryIDs).count == 40, "each delivery has its own id")
        #expect(
            await Self.waitUntil {
                let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
                return Set(ids).isSubset(of: Self.eventIDs(inLines: text))
            }, "every event id is in the file")
        // Every attempt is an execution record, listable by route through the API.
        if let listed = try controller.kubectl(
            ["get", "--raw", "/apis/steady.dev/v1/executions?labelSelector=route=scans&limit=1000"])
        {
            #expect(listed.status == 0, "\(listed)")
            for id in ids { #expect(listed.output.contains(id)) }
            #expect(listed.output.contains("\"result\":\"Succeeded\""))
        }
        // And with `steady get executions`, as a table.
        let table = try controller.run("steady", ["get", "executions", "-l", "route=scans"])
        #expect(table.status == 0, "\(table)")
        #expect(table.output.hasPrefix("NAME") && table.output.contains("RESULT"), "\(table)")
        #expect(table.output.split(separator: "\n").filter { $0.contains("Succeeded") }.count >= 60, "\(table)")
    }

    @Test func theAPITakesEventsWithTheAdminToken() async throws {
        let sink = try await EventSink()
        defer { sink.stop() }
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port)
        defer { controller.remove() }
        try controller.apply(
            Self.action("to-sink", "{type: webhook, webhook: {url: '\(sink.url)'}}")
                + Self.route("all", "{input: 'has(input.viaAPI)', actions: [to-sink]}"))
        try await Self.waitForRoutes(port: port, sink: sink, probe: #"{"viaAPI": 0}"#)
        try controller.dataDirectory.write(#"{"viaAPI":1}"#, to: "event.json")
        guard
            let created = try controller.kubectl(
                ["create", "--raw", "/events", "-f", controller.dataDirectory.file("event.json").path])
        else { return }
        #expect(created.status == 0, "\(created)")
        #expect(created.output.contains("\"id\""))
        #expect(await Self.waitUntil { sink.requests.contains { $0.body.contains("\"viaAPI\":1") } })
    }

    static func eventIDs(inLines text: String) -> Set<String> {
        Set(
            text.split(separator: "\n").compactMap { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    return nil
                }
                return object["eventId"] as? String
            })
    }

    @Test func anEventsTokenMayPostEventsAndNothingElse() async throws {
        guard let curl = Binaries.onPath("curl") else { return }
        let sink = try await EventSink()
        defer { sink.stop() }
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port)
        defer { controller.remove() }
        try controller.apply(
            Self.action("to-sink", "{type: webhook, webhook: {url: '\(sink.url)'}}")
                + Self.route("all", "{input: 'has(input.viaToken)', actions: [to-sink]}"))
        try await Self.waitForRoutes(port: port, sink: sink, probe: #"{"viaToken":0}"#)
        let created = try controller.run("steady", ["token", "create", "--events"])
        #expect(created.status == 0, "\(created)")
        let token = created.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let ca = controller.dataDirectory.file("ca.crt").path
        func call(_ method: String, _ path: String, body: String? = nil, bearer: String) throws -> String {
            var arguments = [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, "-X", method, "-H",
                "Authorization: Bearer \(bearer)", "\(controller.server)\(path)",
            ]
            if let body { arguments += ["-H", "Content-Type: application/json", "--data", body] }
            return try CommandResult.run(curl, arguments).output
        }
        #expect(try call("POST", "/events", body: #"{"viaToken":1}"#, bearer: token) == "202")
        #expect(await Self.waitUntil { sink.requests.contains { $0.body.contains("\"viaToken\":1") } })
        // It can do nothing else: not read objects, not list executions, not even discovery.
        #expect(try call("GET", "/apis/steady.dev/v1/routes", bearer: token) == "403")
        #expect(try call("GET", "/apis/steady.dev/v1/executions", bearer: token) == "403")
        #expect(try call("GET", "/apis", bearer: token) == "403")
        // A made-up token of the same shape is refused.
        #expect(try call("POST", "/events", body: "{}", bearer: "abcdef.0123456789abcdef") == "401")
    }

    @Test func routeAndActionStatusCountDeliveriesAndABrokenReceiverIsDegraded() async throws {
        let sink = try await EventSink()
        defer { sink.stop() }
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port)
        defer { controller.remove() }
        try controller.apply(
            Self.action("good", "{type: webhook, webhook: {url: '\(sink.url)'}}")
                + Self.action("broken", "{type: http, http: {url: 'http://127.0.0.1:\(sink.port)/missing', method: GET}}")
                + Self.route("counted", "{input: 'has(input.n)', actions: [good, broken]}"))
        try await Self.waitForRoutes(port: port, sink: sink, probe: #"{"n":0}"#)
        for n in 1...4 { _ = try await Self.post(#"{"n":\#(n)}"#, port: port) }
        func status(_ object: String) throws -> [String: Any] {
            let shown = try controller.run("steady", ["get", object, "-o", "json"])
            let value = try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [String: Any]
            return value?["status"] as? [String: Any] ?? [:]
        }
        #expect(
            try await Self.waitUntil {
                let route = try status("route/counted")
                return (route["matchedEvents"] as? Int ?? 0) >= 5 && (route["delivered"] as? Int ?? 0) >= 5
                    && (route["failed"] as? Int ?? 0) >= 5
            }, "\((try? status("route/counted")) ?? [:])")
        #expect(try await Self.waitUntil { (try status("action/good")["delivered"] as? Int ?? 0) >= 5 })
        #expect(
            try await Self.waitUntil {
                let conditions = try status("action/broken")["conditions"] as? [[String: Any]] ?? []
                return conditions.contains {
                    $0["type"] as? String == "Degraded" && $0["status"] as? String == "True"
                        && ($0["message"] as? String ?? "").contains("404")
                }
            }, "\((try? status("action/broken")) ?? [:])")
    }

    @Test func badInputIsRefusedWith400And413And429WhenFull() async throws {
        let sink = try await EventSink(isDown: true)
        defer { sink.stop() }
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port, extra: ["--events-max-pending", "1"])
        defer { controller.remove() }
        let invalid = try await Self.post("{not json", port: port)
        #expect(invalid.status == 400)
        #expect(invalid.body.contains("not JSON"), "\(invalid.body)")
        let large = try await Self.post(#"{"x": ""# + String(repeating: "a", count: 1 << 20) + #""}"#, port: port)
        #expect(large.status == 413)
        try controller.apply(
            Self.action("down", "{type: webhook, webhook: {url: '\(sink.url)'}, retry: {attempts: 100, backoff: 1h}}")
                + Self.route("all", "{actions: [down]}"))
        // Once the one allowed pending delivery waits for the receiver, the next event is refused.
        var refused: EventEndToEndTests.Answer?
        for _ in 0..<200 where refused == nil {
            let answer = try await Self.post(#"{"n":1}"#, port: port)
            if answer.status == 429 { refused = answer } else { try await Task.sleep(for: .milliseconds(50)) }
        }
        let answer = try #require(refused, "no 429 came")
        #expect(answer.retryAfter == "1")
    }

    @Test func aReceiverThatIsDownGetsTheEventOnceItIsBack() async throws {
        let sink = try await EventSink(isDown: true)
        defer { sink.stop() }
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port)
        defer { controller.remove() }
        try controller.apply(
            Self.action("flaky", "{type: http, http: {url: '\(sink.url)'}, retry: {attempts: 50, backoff: 100ms, maxBackoff: 200ms}}")
                + Self.route("all", "{actions: [flaky]}"))
        var answer = try await Self.post(#"{"n":1}"#, port: port)
        // The route table may not hold the route yet; post until an event is routed and fails at the receiver.
        #expect(
            await Self.waitUntil {
                controller.log().contains("delivery failed")
            }, "\(controller.log())")
        answer = try await Self.post(#"{"n":2}"#, port: port)
        #expect(answer.status == 202)
        #expect(sink.requests.isEmpty)
        sink.setDown(false)
        #expect(await Self.waitUntil { sink.requests.contains { $0.body.contains("\"n\":2") } }, "\(controller.log())")
    }

    @Test func sigkillOfTheControllerLosesNoAcknowledgedEvent() async throws {
        let sink = try await EventSink(isDown: true)
        defer { sink.stop() }
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port)
        defer { controller.remove() }
        try controller.apply(
            Self.action("later", "{type: http, http: {url: '\(sink.url)'}, retry: {attempts: 100, backoff: 100ms, maxBackoff: 300ms}}")
                + Self.route("all", "{actions: [later]}"))
        let ready = try controller.run("steady", ["wait", "--for=condition=Ready", "route/all", "--timeout", "30s"])
        #expect(ready.status == 0, "\(ready)")
        var ids: [String] = []
        for n in 0..<100 {
            let answer = try await Self.post(#"{"n":\#(n)}"#, port: port)
            if answer.status == 202, let id = Self.id(of: answer) { ids.append(id) }
        }
        #expect(ids.count == 100)
        controller.stop(signal: SIGKILL)
        sink.setDown(false)
        try controller.start(extraArguments: ["--events-listen", "127.0.0.1:\(port)"], port: controller.port)
        #expect(
            await Self.waitUntil(timeout: .seconds(60)) {
                let bodies = sink.requests.map(\.body).joined(separator: "\n")
                return (0..<100).allSatisfy { bodies.contains("{\"n\":\($0)}") }
            }, "\(controller.log())")
    }

    @Test func dedupDropsARepeatWithinTheWindowAndDeliversItAgainAfter() async throws {
        let sink = try await EventSink()
        defer { sink.stop() }
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port)
        defer { controller.remove() }
        try controller.apply(
            Self.action("to-sink", "{type: webhook, webhook: {url: '\(sink.url)'}}")
                + Self.route("once", "{input: 'has(input.id)', actions: [to-sink], dedup: {keys: [input.id], window: 3s}}"))
        func count(_ id: String) -> Int { sink.requests.filter { $0.body.contains("\"id\":\"\(id)\"") }.count }
        // The first event is delivered (this also waits for the route table).
        var first = try await Self.post(#"{"id":"a","n":1}"#, port: port)
        while count("a") == 0 {
            try await Task.sleep(for: .milliseconds(100))
            if count("a") == 0 { first = try await Self.post(#"{"id":"a","n":1}"#, port: port) }
        }
        #expect(first.status == 202)
        let firstSeen = ContinuousClock.now
        // The key is recorded with the delivery's execution record, in the commit after the sink answered: wait for
        // the record, so that the repeat below meets a recorded key rather than racing that commit.
        #expect(
            try await Self.waitUntil {
                try controller.run("steady", ["get", "executions", "-l", "route=once"]).output.contains("Succeeded")
            })
        // A repeat within the window is dropped; a different key behind it is delivered.
        _ = try await Self.post(#"{"id":"a","n":2}"#, port: port)
        _ = try await Self.post(#"{"id":"b"}"#, port: port)
        #expect(await Self.waitUntil { count("b") == 1 })
        if ContinuousClock.now - firstSeen < .seconds(2) {
            #expect(!sink.requests.contains { $0.body.contains("\"n\":2") }, "the repeat was delivered")
        }
        // After the window the same key is delivered again.
        try await Task.sleep(until: firstSeen + .seconds(3.5))
        _ = try await Self.post(#"{"id":"a","n":3}"#, port: port)
        #expect(await Self.waitUntil { sink.requests.contains { $0.body.contains("\"n\":3") } })
    }

    @Test func aggregateDeliversOneMessageAtCountAndAtTimeout() async throws {
        let sink = try await EventSink()
        defer { sink.stop() }
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port)
        defer { controller.remove() }
        try controller.apply(
            Self.action("to-sink", "{type: webhook, webhook: {url: '\(sink.url)'}}")
                + Self.route("by-three", "{input: 'input.group == \"count\"', actions: [to-sink], aggregate: {count: 3}}")
                + Self.route("by-time", "{input: 'input.group == \"time\"', actions: [to-sink], aggregate: {count: 100, timeout: 1s}}"))
        let ready = try controller.run(
            "steady", ["wait", "--for=condition=Ready", "route/by-three", "route/by-time", "--timeout", "30s"])
        #expect(ready.status == 0, "\(ready)")
        try await Task.sleep(for: .milliseconds(500))
        for n in 1...3 { _ = try await Self.post(#"{"group":"count","n":\#(n)}"#, port: port) }
        for n in 1...2 { _ = try await Self.post(#"{"group":"time","n":\#(n)}"#, port: port) }
        #expect(await Self.waitUntil { sink.requests.count >= 2 }, "\(controller.log())")
        let bodies = sink.requests.map(\.body)
        #expect(bodies.contains(#"[{"group":"count","n":1},{"group":"count","n":2},{"group":"count","n":3}]"#), "\(bodies)")
        #expect(bodies.contains(#"[{"group":"time","n":1},{"group":"time","n":2}]"#), "\(bodies)")
        #expect(sink.requests.count == 2)
    }

    @Test func execRunsTheArgvWithTheMessageOnStdinAndStdoutPrintsIt() async throws {
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port, extra: ["--allow-exec"])
        defer { controller.remove() }
        let output = controller.dataDirectory.file("exec.out").path
        try controller.apply(
            """
            apiVersion: steady.dev/v1
            kind: Secret
            metadata: {name: exec-env}
            stringData: {target: '\(output)'}
            ---

            """
                + Self.action(
                    "run",
                    "{type: exec, exec: {command: [/bin/sh, -c, 'cat >> \"$OUT\"; echo \" $STEADY_EVENT_ID $STEADY_ROUTE\" >> \"$OUT\"'], env: [{name: OUT, valueFrom: {secretKeyRef: {name: exec-env, key: target}}}]}}")
                + Self.action("print", "{type: stdout}")
                + Self.route("local", "{input: 'input.kind == \"proc\"', actions: [run, print]}"))
        let ready = try controller.run("steady", ["wait", "--for=condition=Ready", "route/local", "--timeout", "30s"])
        #expect(ready.status == 0, "\(ready)")
        try await Task.sleep(for: .milliseconds(500))
        let answer = try await Self.post(#"{"kind":"proc","pid":42}"#, port: port)
        let id = try #require(Self.id(of: answer))
        #expect(
            await Self.waitUntil {
                let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
                return text.contains(#"{"kind":"proc","pid":42}"#) && text.contains("\(id) local")
            }, "\(controller.log())")
        #expect(await Self.waitUntil { controller.log().contains(#"{"kind":"proc","pid":42}"#) })
    }

    @Test func serializedActionsRunInTheirDeclaredOrder() async throws {
        let sink = try await EventSink()
        defer { sink.stop() }
        let port = try Self.freePort()
        let controller = try Self.startController(eventsPort: port)
        defer { controller.remove() }
        let names = ["one", "two", "three"]
        try controller.apply(
            names.map { Self.action($0, "{type: webhook, webhook: {url: 'http://127.0.0.1:\(sink.port)/\($0)'}}") }
                .joined()
                + Self.route("ordered", "{actions: [one, two, three], serializeActions: true}"))
        let ready = try controller.run("steady", ["wait", "--for=condition=Ready", "route/ordered", "--timeout", "30s"])
        #expect(ready.status == 0, "\(ready)")
        try await Task.sleep(for: .milliseconds(500))
        for n in 1...5 { _ = try await Self.post(#"{"n":\#(n)}"#, port: port) }
        #expect(await Self.waitUntil { sink.requests.count >= 15 })
        for n in 1...5 {
            let paths = sink.requests.filter { $0.body == #"{"n":\#(n)}"# }.map(\.path)
            #expect(paths == ["/one", "/two", "/three"], "event \(n): \(paths)")
        }
    }
}
