import ArgumentParser
import Foundation
import Resources
import Testing

@testable import Client

/// `steady wait` against the real API server.
@Suite(.timeLimit(.minutes(2))) struct WaitLiveTests {
    static let readyPatch: JSONValue = [
        "status": [
            "conditions": [
                [
                    "type": "Ready", "status": "True", "reason": "Ready", "message": "",
                    "lastTransitionTime": "2030-01-01T00:00:00Z", "observedGeneration": 1,
                ]
            ]
        ]
    ]

    @Test func waitForDeleteReturnsWhenTheObjectIsDeleted() async throws {
        try await LiveServer.with { context in
            let client = context.client
            _ = try await client.create(Kinds.route, APIClientLiveTests.route("doomed"))
            let progress = WaitProgress()
            async let isMet = WaitCommand.wait(
                for: Kinds.route, name: "doomed", condition: .delete, once: false, client: client, progress: progress)
            // Deleted once the wait has seen the object, so that it sees the deletion happen.
            await progress.waitUntilSeen("route.steady.dev/doomed")
            _ = try await client.delete(Kinds.route, name: "doomed")
            #expect(try await isMet)
        }
    }

    @Test func waitCommandSucceedsWhenReadyAndTimesOutOtherwise() async throws {
        try await LiveServer.with { context in
            let client = context.client
            _ = try await client.create(Kinds.route, APIClientLiveTests.route("ready"))
            _ = try await client.create(Kinds.route, APIClientLiveTests.route("stuck"))
            _ = try await client.mergePatch(Kinds.route, name: "ready", patch: Self.readyPatch, subresource: "status")

            let met = try WaitCommand.parse(
                ["--for=condition=Ready", "route/ready", "--timeout", "5s"] + context.flags)
            try await met.run()

            let stuck = try WaitCommand.parse(
                ["--for=condition=Ready", "route/ready", "route/stuck", "--timeout", "1s"] + context.flags)
            await #expect(throws: ExitCode.failure) { try await stuck.run() }

            // Set while waiting: the watch sees it.
            let progress = WaitProgress()
            async let isMet = WaitCommand.wait(
                for: Kinds.route, name: "stuck", condition: .condition(type: "Ready", status: "True"), once: false,
                client: client, progress: progress)
            await progress.waitUntilSeen("route.steady.dev/stuck")
            _ = try await client.mergePatch(Kinds.route, name: "stuck", patch: Self.readyPatch, subresource: "status")
            #expect(try await isMet)
        }
    }
}
