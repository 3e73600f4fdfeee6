import Foundation
import Logging
import Prometheus
import Resources
import ServiceLifecycle
import SteadyTesting
import Synchronization
import Testing

@testable import Reconciler

/// Objects as the API server stores them, built without going through admission.
enum ControllerFixtures {
    static func object(
        _ kind: String, _ name: String, spec: JSONValue, labels: [String: String] = [:], generation: Int64 = 1
    )
        -> JSONValue
    {
        var metadata: JSONValue = ["name": .string(name), "generation": .int(generation)]
        if !labels.isEmpty { metadata["labels"] = .object(labels.mapValues { .string($0) }) }
        return ["apiVersion": "steady.dev/v1", "kind": .string(kind), "metadata": metadata, "spec": spec]
    }

    static func strings(_ values: [String]) -> JSONValue { .array(values.map { .string($0) }) }

    static func route(_ name: String, actions: [String], template: String? = nil, input: String = "") -> JSONValue {
        var spec: JSONValue = ["input": .string(input), "actions": strings(actions)]
        if let template { spec["template"] = .string(template) }
        return object("Route", name, spec: spec)
    }

    static func action(_ name: String, secretKeys: [(secret: String, key: String)] = []) -> JSONValue {
        let headers: [JSONValue] = secretKeys.map { reference in
            [
                "name": "Authorization",
                "valueFrom": ["secretKeyRef": ["name": .string(reference.secret), "key": .string(reference.key)]],
            ]
        }
        var http: JSONValue = ["url": "https://tickets.example/api", "method": "POST"]
        if !headers.isEmpty { http["headers"] = .array(headers) }
        return object("Action", name, spec: ["type": "http", "http": http])
    }

    static func secret(_ name: String, keys: [String: String]) -> JSONValue {
        [
            "apiVersion": "steady.dev/v1", "kind": "Secret", "metadata": ["name": .string(name)],
            "stringData": .object(keys.mapValues { .string($0) }),
        ]
    }

    static func template(_ name: String, type: String = "mustache", body: String) -> JSONValue {
        object("Template", name, spec: ["type": .string(type), "body": .string(body)])
    }

    static func runner(_ name: String, labels: [String: String] = [:]) -> JSONValue {
        object("Runner", name, spec: [:], labels: labels)
    }

    static func assignment(
        _ name: String, runners: [String]? = nil, selector: [String: String]? = nil, routes: [String]? = nil,
        actions: [String]? = nil
    ) -> JSONValue {
        var spec: JSONValue = [:]
        if let runners { spec["runners"] = strings(runners) }
        if let selector { spec["runnerSelector"] = ["matchLabels": .object(selector.mapValues { .string($0) })] }
        if let routes { spec["routes"] = strings(routes) }
        if let actions { spec["actions"] = strings(actions) }
        return object("Assignment", name, spec: spec)
    }

    /// A cache holding `objects`, as if listed from a store.
    static func cache(_ objects: [JSONValue]) -> ObjectCache {
        let cache = ObjectCache(kinds: ReconcileTriggers.watchedKinds, references: ReconcileTriggers.references)
        let stored = objects.enumerated().map { index, object in
            StoredObject(
                kind: object["kind"]!.stringValue!, name: object["metadata"]!["name"]!.stringValue!,
                value: object.jsonData(), createRevision: Int64(index + 1), modRevision: Int64(index + 1))
        }
        _ = cache.replace(with: stored, revision: Int64(objects.count))
        return cache
    }

    static func ready(_ status: JSONValue) -> Condition? {
        StatusReport.existingConditions(of: ["status": status])[type: "Ready"]
    }
}

@Suite(.timeLimit(.minutes(5))) struct StatusReconcilerTests {
    typealias F = ControllerFixtures
    let placements = PlacementResolver()

    @Test func routeIsReadyWhenItsActionsAndTemplateExist() throws {
        let route = F.route("critical", actions: ["open-ticket", "notify"], template: "summary")
        let cache = F.cache([
            route, F.action("open-ticket"), F.action("notify"), F.template("summary", body: "{{input.x}}"),
        ])
        let status = try RouteReconciler(placements: placements).status(of: route, in: cache)
        let ready = try #require(F.ready(status))
        #expect(ready.status == .true)
        #expect(ready.reason == "Ready")
        #expect(ready.observedGeneration == 1)
        #expect(status["observedGeneration"] == 1)
    }

    @Test func routeNamesItsMissingActionsAndTemplate() throws {
        let route = F.route("critical", actions: ["open-ticket", "notify", "page"], template: "summary")
        let cache = F.cache([route, F.action("notify")])
        let status = try RouteReconciler(placements: placements).status(of: route, in: cache)
        let ready = try #require(F.ready(status))
        #expect(ready.status == .false)
        #expect(ready.reason == "MissingAction")
        #expect(ready.message == #"actions "open-ticket", "page" not found; template "summary" not found"#)

        let onlyTemplate = F.route("r", actions: ["notify"], template: "summary")
        let templateStatus = try RouteReconciler(placements: placements).status(of: onlyTemplate, in: cache)
        #expect(F.ready(templateStatus)?.reason == "MissingTemplate")
        #expect(F.ready(templateStatus)?.message == #"template "summary" not found"#)

        let single = F.route("s", actions: ["open-ticket"])
        #expect(
            F.ready(try RouteReconciler(placements: placements).status(of: single, in: cache))?.message
                == #"action "open-ticket" not found"#)
    }

    @Test func routeWithAnInvalidInputIsNotReady() throws {
        let route = F.route("broken", actions: ["notify"], input: "input.a ==")
        let status = try RouteReconciler(placements: placements).status(
            of: route, in: F.cache([route, F.action("notify")]))
        #expect(F.ready(status)?.reason == "InvalidExpression")
        #expect(F.ready(status)?.message.hasPrefix("spec.input: ") == true)
    }

    @Test func routePlacementSplitsControllerAndRunnerActions() throws {
        let route = F.route("trc-2-mixed", actions: ["kill-process", "ship-logs", "open-ticket"])
        let cache = F.cache([
            route, F.action("kill-process"), F.action("ship-logs"), F.action("open-ticket"),
            F.runner("web-1", labels: ["role": "web"]), F.runner("web-2", labels: ["role": "web"]),
            F.runner("db-1", labels: ["role": "db"]), F.runner("db-2", labels: ["role": "db"]),
            F.assignment("tracee-hosts", selector: ["role": "web"], actions: ["kill-process"]),
            F.assignment("logs", runners: ["db-1"], actions: ["ship-logs"]),
        ])
        let status = try RouteReconciler(placements: placements).status(of: route, in: cache)
        #expect(status["placement"]?["controllerActions"] == ["open-ticket"])
        #expect(status["placement"]?["runnerActions"] == ["kill-process", "ship-logs"])
        #expect(status["placement"]?["runners"] == ["db-1", "web-1", "web-2"])
        #expect(F.ready(status)?.status == .true)
    }

    @Test func actionChecksSecretKeysWithoutRevealingValues() throws {
        let action = F.action("open-ticket", secretKeys: [("ticket-creds", "token"), ("other", "key")])
        let cache = F.cache([action, F.secret("ticket-creds", keys: ["user": "s3cr3t-value"])])
        let status = try ActionReconciler(placements: placements).status(of: action, in: cache)
        let ready = try #require(F.ready(status))
        #expect(ready.status == .false)
        #expect(ready.reason == "MissingSecretKey")
        #expect(ready.message == #"secret "ticket-creds" has no key "token"; secret "other" not found"#)
        #expect(!status.jsonString().contains("s3cr3t-value"))
        #expect(status["placement"]?["controller"] == true)

        let complete = F.cache([
            action, F.secret("ticket-creds", keys: ["token": "t"]), F.secret("other", keys: ["key": "k"]),
        ])
        #expect(F.ready(try ActionReconciler(placements: placements).status(of: action, in: complete))?.status == .true)
        let onlyMissing = F.cache([action])
        #expect(
            F.ready(try ActionReconciler(placements: placements).status(of: action, in: onlyMissing))?.reason
                == "MissingSecret")
    }

    @Test func templateCompileErrorsCarryTheirPosition() throws {
        let good = F.template("ok", body: "Scan of {{input.ArtifactName}}")
        let bad = F.template("bad", body: "line one\n{{#items}} unclosed")
        let cache = F.cache([good, bad])
        #expect(F.ready(try TemplateReconciler().status(of: good, in: cache))?.status == .true)
        let ready = try #require(F.ready(try TemplateReconciler().status(of: bad, in: cache)))
        #expect(ready.status == .false)
        #expect(ready.reason == "CompileError")
        #expect(ready.message.contains("spec.body"))
        #expect(ready.message.contains("2:"), "the message gives the line: \(ready.message)")
        let raw = F.template("raw", type: "raw-json", body: "{{#")
        #expect(F.ready(try TemplateReconciler().status(of: raw, in: cache))?.status == .true)
    }

    @Test func assignmentNamesMissingReferencesAndMatchesRunners() throws {
        let assignment = F.assignment(
            "tracee-hosts", runners: ["web-9", "db-1"], selector: ["role": "web"], routes: ["trc-2", "gone"],
            actions: ["kill-process"])
        let cache = F.cache([
            assignment, F.route("trc-2", actions: ["kill-process"]), F.runner("web-2", labels: ["role": "web"]),
            F.runner("web-1", labels: ["role": "web"]), F.runner("db-1", labels: ["role": "db"]),
            F.runner("db-2", labels: ["role": "db"]),
        ])
        let status = try AssignmentReconciler(placements: placements).status(of: assignment, in: cache)
        let ready = try #require(F.ready(status))
        #expect(ready.reason == "MissingReference")
        #expect(ready.message == #"route "gone" not found; action "kill-process" not found; runner "web-9" not found"#)
        #expect(status["matchedRunners"] == ["db-1", "web-1", "web-2"])
    }

    @Test func lastTransitionTimeIsKeptWhileTheStatusHolds() throws {
        var route = F.route("critical", actions: ["notify"])
        let cache = F.cache([route, F.action("notify")])
        var condition = Condition(
            type: "Ready", status: .true, reason: "Ready", message: "old", observedGeneration: 1,
            lastTransitionTime: "2020-01-01T00:00:00Z")
        route["status"] = ["conditions": try JSONValue(encoding: [condition])]
        let status = try RouteReconciler(placements: placements).status(of: route, in: cache)
        #expect(F.ready(status)?.lastTransitionTime == "2020-01-01T00:00:00Z")
        condition.status = .false
        route["status"] = ["conditions": try JSONValue(encoding: [condition])]
        let flipped = try RouteReconciler(placements: placements).status(of: route, in: cache)
        #expect(F.ready(flipped)?.lastTransitionTime != "2020-01-01T00:00:00Z")
    }

    @Test func changesRequeueTheirDependentsThroughTheReverseIndex() throws {
        let objects = [
            F.route("a", actions: ["notify"], template: "summary"), F.route("b", actions: ["notify", "page"]),
            F.route("c", actions: ["page"]), F.action("notify", secretKeys: [("creds", "token")]), F.action("page"),
            F.template("summary", body: "x"), F.secret("creds", keys: ["token": "t"]),
            F.runner("web-1", labels: ["role": "web"]), F.runner("db-1"),
            F.assignment("by-label", selector: ["role": "web"], actions: ["page"]),
            F.assignment("by-name", runners: ["db-1"], routes: ["a"]),
        ]
        let cache = F.cache(objects)
        func keys(_ kind: String, _ name: String, old: JSONValue?, new: JSONValue?) -> [String] {
            ReconcileTriggers.keys(
                for: ObjectChange(key: ObjectKey(kind: kind, name: name), old: old, new: new), in: cache
            )
            .sorted().map(\.description)
        }
        let notify = F.action("notify")
        #expect(keys("Action", "notify", old: notify, new: nil) == ["Route/a", "Route/b"])
        #expect(keys("Action", "notify", old: nil, new: notify) == ["Action/notify", "Route/a", "Route/b"])
        #expect(
            keys("Action", "page", old: nil, new: F.action("page")) == [
                "Action/page", "Assignment/by-label", "Route/b", "Route/c",
            ])
        #expect(
            keys("Template", "summary", old: nil, new: F.template("summary", body: "y")) == [
                "Route/a", "Template/summary",
            ])
        #expect(keys("Secret", "creds", old: nil, new: F.secret("creds", keys: [:])) == ["Action/notify"])
        #expect(keys("Runner", "web-2", old: nil, new: F.runner("web-2")) == ["Assignment/by-label"])
        #expect(
            keys("Runner", "db-1", old: F.runner("db-1"), new: nil) == ["Assignment/by-label", "Assignment/by-name"])
        let assignment = F.assignment("by-name", runners: ["db-1"], routes: ["a"])
        var moved = F.assignment("by-name", runners: ["db-1"], routes: ["c"])
        #expect(
            keys("Assignment", "by-name", old: assignment, new: moved) == ["Assignment/by-name", "Route/a", "Route/c"])

        // Status-only changes wake nobody, except an Assignment whose matched runners changed.
        var route = F.route("a", actions: ["notify"], template: "summary")
        let before = route
        route["status"] = ["observedGeneration": 1]
        #expect(keys("Route", "a", old: before, new: route).isEmpty)
        var labelled = F.assignment("by-label", selector: ["role": "web"], actions: ["page"])
        let unmatched = labelled
        labelled["status"] = ["matchedRunners": ["web-1"]]
        #expect(keys("Assignment", "by-label", old: unmatched, new: labelled) == ["Action/page", "Route/b", "Route/c"])
        moved["status"] = ["observedGeneration": 1]
        #expect(keys("Assignment", "by-name", old: moved, new: moved).isEmpty)
    }
}

@Suite(.timeLimit(.minutes(5))) struct InformerTests {
    typealias F = ControllerFixtures

    @Test func relistsAfterFallingBehindAndReportsEveryDifference() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-informer")
        defer { directory.remove() }
        let store = try SQLiteStore(path: directory.file("state.db").path, watchBufferSize: 4)
        defer { store.close() }
        for index in 0..<10 {
            _ = try await store.create(
                kind: "Action", name: "early-\(index)", value: F.action("early-\(index)").jsonData())
        }
        let cache = ObjectCache(kinds: ReconcileTriggers.watchedKinds, references: ReconcileTriggers.references)
        let informer = Informer(
            store: store, cache: cache, logger: Logger(label: "test"), retryDelay: .milliseconds(10))
        let seen = Locked<[ObjectKey: Int]>([:])
        let isSlow = Locked(true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await informer.run { change in
                    seen.withLock { $0[change.key, default: 0] += 1 }
                    // A slow handler makes the watcher overflow its 4-event buffer.
                    if isSlow.withLock({ $0 }) { Thread.sleep(forTimeInterval: 0.005) }
                }
            }
            try await waitUntil { cache.hasSynced }
            for index in 0..<60 {
                _ = try await store.create(
                    kind: "Action", name: "late-\(index)", value: F.action("late-\(index)").jsonData())
            }
            for index in 0..<5 {
                _ = try await store.delete(kind: "Action", name: "early-\(index)", expectedRevision: nil)
            }
            let last = try await store.create(kind: "GitRepository", name: "ignored", value: Data("{}".utf8))
            isSlow.withLock { $0 = false }
            // The last write is of an unwatched kind; the cache must still have seen its revision.
            try await waitUntil { cache.count(kind: "Action") == 65 && cache.revision >= last.modRevision }
            group.cancelAll()
        }
        let names = Set(cache.names(kind: "Action"))
        #expect(names.count == 65)
        #expect(!names.contains("early-0") && names.contains("early-9") && names.contains("late-59"))
        #expect(cache.count(kind: "GitRepository") == 0)
        let reported = seen.withLock { $0 }
        #expect((0..<60).allSatisfy { reported[ObjectKey(kind: "Action", name: "late-\($0)")] != nil })
        #expect(
            (0..<5).allSatisfy { reported[ObjectKey(kind: "Action", name: "early-\($0)")] == 2 }, "added, then deleted")
        #expect(cache.revision == (try await store.currentRevision()))
    }

    @Test func replacingTheContentReportsWhatChangedDuringAGap() throws {
        let cache = ObjectCache(kinds: ["Action"])
        func stored(_ name: String, revision: Int64) -> StoredObject {
            StoredObject(
                kind: "Action", name: name, value: F.action(name).jsonData(), createRevision: revision,
                modRevision: revision)
        }
        _ = cache.replace(
            with: [stored("kept", revision: 1), stored("changed", revision: 2), stored("deleted", revision: 3)],
            revision: 3)
        let (changes, unreadable) = cache.replace(
            with: [
                stored("kept", revision: 1), stored("changed", revision: 5), stored("added", revision: 6),
                StoredObject(kind: "Action", name: "broken", value: Data("{".utf8), createRevision: 7, modRevision: 7),
            ],
            revision: 7)
        let summary = changes.map { "\($0.key.name):\($0.old == nil ? "-" : "o")\($0.new == nil ? "-" : "n")" }.sorted()
        #expect(summary == ["added:-n", "changed:on", "deleted:o-"])
        #expect(unreadable == [ObjectKey(kind: "Action", name: "broken")])
        #expect(cache.names(kind: "Action") == ["added", "changed", "kept"])
        #expect(cache.entry(kind: "Action", name: "changed")?.revision == 5)
        #expect(cache.revision == 7)
    }
}

@Suite(.timeLimit(.minutes(5))) struct ControllerManagerTests {
    typealias F = ControllerFixtures

    func withManager(
        workers: Int = 4,
        _ body: @Sendable (ObjectService, ControllerManager, PrometheusCollectorRegistry) async throws -> Void
    ) async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        let registry = PrometheusCollectorRegistry()
        var logger = Logger(label: "steady.controller.test")
        logger.logLevel = .info
        let manager = ControllerManager(objects: objects, registry: registry, logger: logger, workers: workers)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await manager.run() }
            try await body(objects, manager, registry)
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    static func create(_ objects: ObjectService, _ object: JSONValue) async throws {
        let info = Kinds.info(forKind: object["kind"]!.stringValue!)!
        _ = try await objects.create(info, body: object, options: WriteOptions())
    }

    static func ready(_ objects: ObjectService, _ info: KindInfo, _ name: String) async throws -> Condition? {
        let object = try await objects.get(info, name: name)
        return StatusReport.existingConditions(of: object)[type: "Ready"]
    }

    static func allRoutes(_ objects: ObjectService, _ names: [String], _ predicate: (Condition?) -> Bool) async throws
        -> Bool
    {
        for name in names {
            if !predicate(try await ready(objects, Kinds.route, name)) { return false }
        }
        return true
    }

    @Test func deletingAnActionMakesItsRoutesUnreadyAndRecreatingItHealsThem() async throws {
        try await withManager { objects, _, registry in
            try await Self.create(objects, F.action("open-ticket"))
            for name in ["r1", "r2", "r3"] {
                try await Self.create(objects, F.route(name, actions: ["open-ticket"]))
            }
            try await Self.create(objects, F.route("unrelated", actions: ["other"]))
            try await waitUntil { try await Self.allRoutes(objects, ["r1", "r2", "r3"]) { $0?.status == .true } }
            try await waitUntil { try await Self.ready(objects, Kinds.route, "unrelated")?.reason == "MissingAction" }

            _ = try await objects.delete(Kinds.action, name: "open-ticket", options: WriteOptions())
            try await waitUntil {
                try await Self.allRoutes(objects, ["r1", "r2", "r3"]) { $0?.reason == "MissingAction" }
            }
            let unready = try #require(try await Self.ready(objects, Kinds.route, "r1"))
            #expect(unready.status == .false)
            #expect(unready.message == #"action "open-ticket" not found"#)
            #expect(unready.observedGeneration == 1)

            try await Self.create(objects, F.action("open-ticket"))
            try await waitUntil { try await Self.allRoutes(objects, ["r1", "r2", "r3"]) { $0?.status == .true } }
            let route = try await objects.get(Kinds.route, name: "r1")
            #expect(route["status"]?["observedGeneration"] == 1)
            #expect(route["status"]?["placement"]?["controllerActions"] == ["open-ticket"])
            let managers =
                route["metadata"]?["managedFields"]?.arrayValue?.compactMap { $0["manager"]?.stringValue } ?? []
            #expect(managers.contains("steady-controller"))

            var text: [UInt8] = []
            registry.emit(into: &text)
            let metrics = String(decoding: text, as: UTF8.self)
            #expect(metrics.contains(#"steady_controller_reconciles_total{kind="Route",result="success"}"#))
            #expect(metrics.contains("steady_controller_workqueue_depth"))
        }
    }

    @Test func secretsTemplatesAndAssignmentsConverge() async throws {
        try await withManager { objects, _, _ in
            try await Self.create(objects, F.action("open-ticket", secretKeys: [("ticket-creds", "token")]))
            try await Self.create(objects, F.template("summary", body: "Scan of {{input.ArtifactName}}"))
            try await Self.create(
                objects, F.route("critical", actions: ["open-ticket", "kill-process"], template: "summary"))
            try await Self.create(objects, F.assignment("hosts", selector: ["role": "web"], actions: ["kill-process"]))
            try await waitUntil {
                try await Self.ready(objects, Kinds.action, "open-ticket")?.reason == "MissingSecret"
            }
            try await waitUntil { try await Self.ready(objects, Kinds.route, "critical")?.reason == "MissingAction" }
            try await waitUntil { try await Self.ready(objects, Kinds.template, "summary")?.status == .true }
            try await waitUntil {
                try await Self.ready(objects, Kinds.assignment, "hosts")?.reason == "MissingReference"
            }

            try await Self.create(objects, F.secret("ticket-creds", keys: ["token": "s3cr3t-value"]))
            try await Self.create(objects, F.action("kill-process"))
            try await Self.create(objects, F.runner("web-1", labels: ["role": "web"]))
            try await waitUntil { try await Self.ready(objects, Kinds.action, "open-ticket")?.status == .true }
            try await waitUntil { try await Self.ready(objects, Kinds.route, "critical")?.status == .true }
            try await waitUntil { try await Self.ready(objects, Kinds.assignment, "hosts")?.status == .true }
            // A runner joining the selector reaches the route's placement through the Assignment.
            try await waitUntil {
                try await objects.get(Kinds.route, name: "critical")["status"]?["placement"]?["runners"] == ["web-1"]
            }
            try await Self.create(objects, F.runner("web-2", labels: ["role": "web"]))
            try await waitUntil {
                try await objects.get(Kinds.route, name: "critical")["status"]?["placement"]?["runners"]
                    == ["web-1", "web-2"]
            }
            let route = try await objects.get(Kinds.route, name: "critical")
            #expect(route["status"]?["placement"]?["runnerActions"] == ["kill-process"])
            #expect(route["status"]?["placement"]?["controllerActions"] == ["open-ticket"])
            // The Assignment's own status is written by its own reconcile, which may come a moment later.
            try await waitUntil {
                try await objects.get(Kinds.assignment, name: "hosts")["status"]?["matchedRunners"] == ["web-1", "web-2"]
            }
            let action = try await objects.get(Kinds.action, name: "open-ticket")
            #expect(!action.jsonString().contains("s3cr3t-value"))
        }
    }

    @Test func reconcilingAConvergedObjectWritesNothing() async throws {
        try await withManager { objects, manager, _ in
            try await Self.create(objects, F.action("notify"))
            try await Self.create(objects, F.route("critical", actions: ["notify"]))
            try await waitUntil { try await Self.ready(objects, Kinds.route, "critical")?.status == .true }
            try await waitUntil { try await Self.ready(objects, Kinds.action, "notify")?.status == .true }
            let revision = try await objects.store.currentRevision()
            for _ in 0..<3 {
                try await manager.reconcile(ObjectKey(kind: "Route", name: "critical"))
                try await manager.reconcile(ObjectKey(kind: "Action", name: "notify"))
            }
            #expect(try await objects.store.currentRevision() == revision)
        }
    }

    @Test func conditionsWrittenByOtherComponentsAreKept() async throws {
        try await withManager { objects, _, _ in
            try await Self.create(objects, F.action("notify"))
            try await Self.create(objects, F.route("critical", actions: ["notify"]))
            try await waitUntil { try await Self.ready(objects, Kinds.route, "critical")?.status == .true }
            let route = try await objects.get(Kinds.route, name: "critical")
            var conditions = route["status"]?["conditions"]?.arrayValue ?? []
            conditions.append(try JSONValue(encoding: Condition(type: "Synced", status: .true, reason: "Synced")))
            _ = try await objects.patch(
                Kinds.route, name: "critical", patch: .merge(["status": ["conditions": .array(conditions)]]),
                subresource: "status", options: WriteOptions(fieldManager: "agent-gateway"))
            _ = try await objects.delete(Kinds.action, name: "notify", options: WriteOptions())
            try await waitUntil { try await Self.ready(objects, Kinds.route, "critical")?.reason == "MissingAction" }
            let updated = try await objects.get(Kinds.route, name: "critical")
            #expect(StatusReport.existingConditions(of: updated)[type: "Synced"]?.status == .true)
        }
    }

    @Test func gracefulShutdownStopsTheManager() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        let manager = ControllerManager(
            objects: objects, registry: PrometheusCollectorRegistry(), logger: Logger(label: "test"), workers: 2)
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [manager], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serviceGroup.run() }
            try await Self.create(objects, F.action("notify"))
            try await waitUntil { try await Self.ready(objects, Kinds.action, "notify")?.status == .true }
            await serviceGroup.triggerGracefulShutdown()
            // run() returning is what ends the group; a manager that ignored shutdown would hang here.
            try await group.waitForAll()
        }
    }
}

/// Polls `condition` until it holds; records an issue and throws `TimedOut` after `timeout`.
func waitUntil(
    timeout: Duration = .seconds(60), interval: Duration = .milliseconds(20),
    sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: interval)
    }
    if try await condition() { return }
    Issue.record("condition did not hold within \(timeout)", sourceLocation: sourceLocation)
    throw TimedOut()
}

/// Thrown by `waitUntil` when its condition never held.
struct TimedOut: Error {}
