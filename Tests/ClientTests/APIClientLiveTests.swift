import Foundation
import Resources
import Testing

@testable import Client

/// APIClient against the real API server over a loopback socket.
@Suite(.timeLimit(.minutes(2))) struct APIClientLiveTests {
    static func route(_ name: String, actions: [JSONValue] = ["a"], labels: JSONValue = ["tier": "a"]) -> JSONValue {
        [
            "apiVersion": "steady.dev/v1", "kind": "Route",
            "metadata": ["name": .string(name), "labels": labels],
            "spec": ["actions": .array(actions)],
        ]
    }

    @Test func createGetListPatchUpdateDelete() async throws {
        try await LiveServer.with { context in
            let client = context.client
            let created = try await client.create(Kinds.route, Self.route("one"))
            #expect(created["metadata"]?["generation"] == 1)
            _ = try await client.create(Kinds.route, Self.route("two", labels: ["tier": "b"]))
            #expect(try await client.get(Kinds.route, name: "one")["spec"]?["actions"] == ["a"])
            let all = try await client.list(Kinds.route)
            #expect(all.items.count == 2)
            #expect(!all.resourceVersion.isEmpty)
            #expect(try await client.list(Kinds.route, labelSelector: "tier=b").items.count == 1)
            #expect(try await client.list(Kinds.route, labelSelector: "tier in (a,b)").items.count == 2)
            #expect(try await client.list(Kinds.route, fieldSelector: "metadata.name=one").items.count == 1)

            let patched = try await client.mergePatch(Kinds.route, name: "one", patch: ["spec": ["actions": ["b"]]])
            #expect(patched["metadata"]?["generation"] == 2)
            var object = patched
            object["spec"]?["serializeActions"] = true
            let updated = try await client.update(Kinds.route, object)
            #expect(updated["spec"]?["serializeActions"] == true)
            // A stale resourceVersion is a conflict.
            await #expect(throws: APIClientError.self) { try await client.update(Kinds.route, object) }

            let status = try await client.mergePatch(
                Kinds.route, name: "one",
                patch: ["status": ["conditions": [["type": "Ready", "status": "True", "reason": "Ok", "message": "", "lastTransitionTime": "2030-01-01T00:00:00Z"]]]],
                subresource: "status")
            #expect(status.conditionStatus("Ready") == "True")

            _ = try await client.delete(Kinds.route, name: "one")
            do {
                _ = try await client.get(Kinds.route, name: "one")
                Issue.record("expected NotFound")
            } catch let error as APIClientError {
                #expect(error.isNotFound)
                #expect(error.description == #"Error from server (NotFound): routes.steady.dev "one" not found"#)
            }
        }
    }

    @Test func invalidObjectsComeBackWithCauses() async throws {
        try await LiveServer.with { context in
            var bad = Self.route("bad")
            bad["spec"]?["input"] = "input.a =="
            do {
                _ = try await context.client.create(Kinds.route, bad)
                Issue.record("expected Invalid")
            } catch let error as APIClientError {
                #expect(error.status == 422)
                #expect(error.reason == "Invalid")
                #expect(error.causes.first?.field == "spec.input")
                #expect(error.description.hasPrefix("Error from server (Invalid): "))
            }
        }
    }

    @Test func aWrongTokenIsUnauthorized() async throws {
        try await LiveServer.with { context in
            let error: APIClientError? = try await APIClient.withClient(.init(server: context.url, token: "wrong")) {
                client in
                do {
                    _ = try await client.list(Kinds.route)
                    return nil
                } catch let error as APIClientError {
                    return error
                }
            }
            #expect(error?.status == 401)
            #expect(error?.description.hasPrefix("Error from server (Unauthorized): ") == true)
        }
    }

    @Test func serverSideApplyCreatesThenLeavesTheVersionAloneWhenNothingChanges() async throws {
        try await LiveServer.with { context in
            let client = context.client
            let first = try await client.apply(Kinds.route, Self.route("r"), fieldManager: "steady")
            #expect(first.created)
            let again = try await client.apply(Kinds.route, Self.route("r"), fieldManager: "steady")
            #expect(!again.created)
            #expect(again.object["metadata"]?["resourceVersion"] == first.object["metadata"]?["resourceVersion"])
            // Another manager changing a field owned by steady conflicts, unless forced.
            do {
                _ = try await client.apply(Kinds.route, Self.route("r", actions: ["z"]), fieldManager: "other")
                Issue.record("expected a conflict")
            } catch let error as APIClientError {
                #expect(error.isConflict)
                #expect(!error.causes.isEmpty)
            }
            let forced = try await client.apply(
                Kinds.route, Self.route("r", actions: ["z"]), fieldManager: "other", force: true)
            #expect(forced.object["spec"]?["actions"] == ["z"])
            // A server dry run computes without storing.
            let dry = try await client.apply(
                Kinds.route, Self.route("r", actions: ["y"]), fieldManager: "other", dryRun: true)
            #expect(dry.object["spec"]?["actions"] == ["y"])
            #expect(try await client.get(Kinds.route, name: "r")["spec"]?["actions"] == ["z"])
        }
    }

    @Test func watchStreamsEventsLineByLine() async throws {
        try await LiveServer.with { context in
            let client = context.client
            _ = try await client.create(Kinds.route, Self.route("existing"))
            let listed = try await client.list(Kinds.route)
            try await withThrowingTaskGroup(of: [String].self) { group in
                group.addTask {
                    var seen: [String] = []
                    for try await event in client.watch(Kinds.route) {
                        seen.append("\(event.type) \(event.object["metadata"]?["name"]?.stringValue ?? "")")
                        if seen.count == 4 { break }
                    }
                    return seen
                }
                group.addTask {
                    _ = try await client.create(Kinds.route, Self.route("new"))
                    _ = try await client.mergePatch(Kinds.route, name: "new", patch: ["spec": ["actions": ["b"]]])
                    _ = try await client.delete(Kinds.route, name: "new")
                    return []
                }
                var events: [String] = []
                for try await result in group where !result.isEmpty { events = result }
                #expect(events == ["ADDED existing", "ADDED new", "MODIFIED new", "DELETED new"])
            }
            // Watching from a resourceVersion skips what came before.
            var fromVersion: [String] = []
            for try await event in client.watch(Kinds.route, resourceVersion: listed.resourceVersion, timeoutSeconds: 1) {
                fromVersion.append("\(event.type) \(event.object["metadata"]?["name"]?.stringValue ?? "")")
            }
            #expect(fromVersion == ["ADDED new", "MODIFIED new", "DELETED new"])
        }
    }

    /// `steady get` prints the server's tables, as kubectl does.
    @Test func tablesComeFromTheServer() async throws {
        try await LiveServer.with { context in
            let client = context.client
            _ = try await client.create(Kinds.route, Self.route("tabled"))
            let table = try await client.table(Kinds.route)
            #expect(table.headers(wide: false) == ["NAME", "READY", "ACTIONS", "INPUT", "AGE"])
            #expect(table.headers(wide: true).suffix(3) == ["TEMPLATE", "RUNNERS", "MATCHED"])
            #expect(table.rows.map(\.name) == ["tabled"])
            #expect(table.rows.first.map { table.cells(of: $0, wide: false) }?.prefix(4) == ["tabled", "", "a", "<all>"])
            #expect(!table.resourceVersion.isEmpty)
            let none = try await client.table(Kinds.route, labelSelector: "tier=none")
            #expect(none.rows.isEmpty)
            let one = try await client.table(Kinds.route, name: "tabled")
            #expect(one.rows.map(\.name) == ["tabled"])
            // A watch asked as a table carries one-row tables.
            var names: [String] = []
            for try await event in client.watch(Kinds.route, timeoutSeconds: 1, asTable: true) {
                names += try ServerTable(event.object).rows.map(\.name)
            }
            #expect(names == ["tabled"])
        }
    }

    @Test func cancellingTheWatchingTaskEndsTheWatch() async throws {
        try await LiveServer.with { context in
            let client = context.client
            _ = try await client.create(Kinds.route, Self.route("watched"))
            let (opened, signal) = AsyncStream<Void>.makeStream()
            let outcome = await withTaskGroup(of: String.self) { group in
                group.addTask {
                    do {
                        for try await _ in client.watch(Kinds.route) { signal.yield() }
                        return "ended by the server"
                    } catch {
                        return "ended by cancellation"
                    }
                }
                // The first event (the existing route) shows the watch is open; then cancel it.
                for await _ in opened { break }
                group.cancelAll()
                return await group.next() ?? ""
            }
            // Without cancellation the watch would go on until the server ends it (a hang the time limit catches).
            #expect(outcome == "ended by cancellation")
        }
    }
}
