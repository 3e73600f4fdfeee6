import ArgumentParser
import Foundation
import Resources
import Testing

@testable import Client

/// `apply` and the Applier against the real API server.
@Suite(.timeLimit(.minutes(2))) struct ApplyLiveTests {
    func objects(_ text: String) throws -> [ManifestObject] {
        let (objects, errors) = Applier.validate(try ManifestDocuments.parse(text, file: "test.yaml"))
        #expect(errors.isEmpty, "\(errors)")
        return objects
    }

    func outcomes(_ report: Applier.Report) -> [String] {
        report.results.map { "\($0.displayName) \($0.outcome?.rawValue ?? "failed")" }
    }

    @Test func createsThenUnchangedThenConfigured() async throws {
        try await LiveServer.with { context in
            let applier = Applier(client: context.client)
            let first = Manifests.join([Manifests.route("r1"), Manifests.route("r2"), Manifests.action("notify")])
            let created = try await applier.apply(try objects(first))
            // Dependency order: the action before the routes that use it.
            #expect(
                outcomes(created) == [
                    "action.steady.dev/notify created", "route.steady.dev/r1 created", "route.steady.dev/r2 created",
                ])
            let again = try await applier.apply(try objects(first))
            #expect(outcomes(again).allSatisfy { $0.hasSuffix(" unchanged") })

            let changed = Manifests.join([
                Manifests.route("r1", input: "input.x == 1"), Manifests.route("r2"), Manifests.action("notify"),
            ])
            let configured = try await applier.apply(try objects(changed))
            #expect(
                outcomes(configured) == [
                    "action.steady.dev/notify unchanged", "route.steady.dev/r1 configured",
                    "route.steady.dev/r2 unchanged",
                ])
            let live = try await context.client.get(Kinds.route, name: "r1")
            #expect(live["spec"]?["input"] == "input.x == 1")
            let managers = (live["metadata"]?["managedFields"]?.arrayValue ?? []).compactMap { $0["manager"]?.stringValue }
            #expect(managers == ["steady"])
            // The action was written before the routes.
            let action = try await context.client.get(Kinds.action, name: "notify")
            let actionVersion = Int(action["metadata"]?["resourceVersion"]?.stringValue ?? "") ?? .max
            let routeVersion = Int(try await context.client.get(Kinds.route, name: "r2")["metadata"]?["resourceVersion"]?.stringValue ?? "") ?? 0
            #expect(actionVersion < routeVersion)
        }
    }

    @Test func anInvalidDocumentMeansNothingIsApplied() async throws {
        try await LiveServer.with { context in
            let path = try context.manifest(
                Manifests.join([Manifests.route("fine"), Manifests.route("broken", input: "input.a ==")]))
            let command = try ApplyCommand.parse(["-f", path] + context.flags)
            await #expect(throws: ExitCode.failure) { try await command.run() }
            #expect(try await context.client.list(Kinds.route).items.isEmpty)
        }
    }

    @Test func theApplyCommandReportsFailuresAfterApplyingTheRest() async throws {
        try await LiveServer.with { context in
            // Another manager owns r1's actions, so steady's apply of r1 conflicts; r2 still goes through.
            _ = try await context.client.apply(
                Kinds.route, APIClientLiveTests.route("r1", actions: ["other"]), fieldManager: "someone-else")
            let path = try context.manifest(Manifests.join([Manifests.route("r1"), Manifests.route("r2")]))
            let command = try ApplyCommand.parse(["-f", path] + context.flags)
            await #expect(throws: ExitCode.failure) { try await command.run() }
            #expect(try await context.client.list(Kinds.route).items.count == 2)
            let forced = try ApplyCommand.parse(["-f", path, "--force-conflicts"] + context.flags)
            try await forced.run()
            #expect(try await context.client.get(Kinds.route, name: "r1")["spec"]?["actions"] == ["notify"])
        }
    }

    @Test func dryRunsChangeNothing() async throws {
        try await LiveServer.with { context in
            let server = Applier(client: context.client, options: .init(dryRun: .server))
            let report = try await server.apply(try objects(Manifests.route("r1")))
            #expect(outcomes(report) == ["route.steady.dev/r1 created"])
            #expect(report.results.first?.line(dryRun: .server) == "route.steady.dev/r1 created (server dry run)")
            #expect(try await context.client.list(Kinds.route).items.isEmpty)

            _ = try await Applier(client: context.client).apply(try objects(Manifests.route("r1")))
            let before = try await context.client.get(Kinds.route, name: "r1")
            let changed = try objects(Manifests.route("r1", input: "input.y == 2"))
            #expect(outcomes(try await server.apply(changed)) == ["route.steady.dev/r1 configured"])
            #expect(outcomes(try await server.apply(try objects(Manifests.route("r1")))) == ["route.steady.dev/r1 unchanged"])
            let client = Applier(client: context.client, options: .init(dryRun: .client))
            #expect(outcomes(try await client.apply(changed)) == ["route.steady.dev/r1 configured"])
            #expect(outcomes(try await client.apply(try objects(Manifests.route("r2")))) == ["route.steady.dev/r2 created"])
            #expect(try await context.client.get(Kinds.route, name: "r1") == before)
            #expect(try await context.client.list(Kinds.route).items.count == 1)
        }
    }

    @Test func pruneDeletesOnlyObjectsOfTheApplySetThatAreNoLongerDeclared() async throws {
        try await LiveServer.with { context in
            let client = context.client
            // Not part of the set: created by hand, and one of another ApplySet.
            _ = try await client.create(Kinds.route, APIClientLiveTests.route("by-hand"))
            let otherSet = ApplySet.id(forParent: "other")
            _ = try await client.create(
                Kinds.route, APIClientLiveTests.route("elsewhere", labels: [.init(stringLiteral: ApplySet.partOfLabel): .string(otherSet)]))

            let options = Applier.Options(applySet: "fleet", prune: true)
            let applier = Applier(client: client, options: options)
            let full = Manifests.join([Manifests.route("r1"), Manifests.route("r2"), Manifests.action("notify")])
            _ = try await applier.apply(try objects(full))
            let id = ApplySet.id(forParent: "fleet")
            let parent = try await client.get(Kinds.secret, name: "fleet")
            #expect(parent["metadata"]?["labels"]?[ApplySet.idLabel]?.stringValue == id)
            #expect(parent["metadata"]?["annotations"]?[ApplySet.toolingAnnotation] == "steady/v1")
            #expect(
                parent["metadata"]?["annotations"]?[ApplySet.groupKindsAnnotation] == "Action.steady.dev,Route.steady.dev")
            #expect(try await client.get(Kinds.route, name: "r1")["metadata"]?["labels"]?[ApplySet.partOfLabel]?.stringValue == id)

            // A dry run reports what would be pruned and deletes nothing.
            let dry = Applier(client: client, options: .init(dryRun: .server, applySet: "fleet", prune: true))
            let preview = try await dry.apply(try objects(Manifests.route("r1")))
            #expect(outcomes(preview).contains("route.steady.dev/r2 pruned"))
            #expect(try await client.list(Kinds.route).items.count == 4)

            let report = try await applier.apply(try objects(Manifests.route("r1")))
            #expect(
                outcomes(report) == [
                    "route.steady.dev/r1 unchanged", "route.steady.dev/r2 pruned", "action.steady.dev/notify pruned",
                ])
            let names = Set(try await client.list(Kinds.route).items.compactMap { $0["metadata"]?["name"]?.stringValue })
            #expect(names == ["r1", "by-hand", "elsewhere"])
            #expect(try await client.list(Kinds.action).items.isEmpty)
            let updated = try await client.get(Kinds.secret, name: "fleet")
            #expect(updated["metadata"]?["annotations"]?[ApplySet.groupKindsAnnotation] == "Route.steady.dev")

            // A Secret of the same name that is not an ApplySet parent is refused.
            _ = try await client.create(
                Kinds.secret, ["apiVersion": "steady.dev/v1", "kind": "Secret", "metadata": ["name": "plain"]])
            let refused = Applier(client: client, options: .init(applySet: "plain", prune: true))
            await #expect(throws: APIClientError.self) { try await refused.apply(try objects(Manifests.route("r1"))) }
        }
    }

    @Test func applyCommandReadsStandardInputStyleArgumentsAndPrintsNames() throws {
        let command = try ApplyCommand.parse(["-f", "-", "-o", "name", "--server", "http://127.0.0.1:1"])
        #expect(command.manifests.files == ["-"])
        #expect(command.connection.server == "http://127.0.0.1:1")
    }

    /// Not a timed assertion: prints the figure for the record.
    @Test func applyThroughput() async throws {
        try await LiveServer.with { context in
            let count = 2000
            let text = Manifests.join((0..<count).map { Manifests.route("route-\($0)", input: "input.id == \($0)") })
            let documents = try ManifestDocuments.parse(text, file: "bench.yaml")
            let validationStart = ContinuousClock.now
            let (objects, errors) = Applier.validate(documents)
            let validation = ContinuousClock.now - validationStart
            #expect(errors.isEmpty)
            let start = ContinuousClock.now
            let report = try await Applier(client: context.client).apply(objects)
            let elapsed = ContinuousClock.now - start
            #expect(report.failures.isEmpty)
            #expect(report.results.count == count)
            let secondsTaken = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print(
                "apply throughput: \(count) objects in \(elapsed) = \(Int(Double(count) / secondsTaken)) objects/s "
                    + "(local validation \(validation))")
            let againStart = ContinuousClock.now
            let again = try await Applier(client: context.client).apply(objects)
            #expect(again.results.allSatisfy { $0.outcome == .unchanged })
            print("apply throughput (all unchanged): \(count) objects in \(ContinuousClock.now - againStart)")
        }
    }
}
