import ArgumentParser
import Foundation
import Resources
import Testing

@testable import Client

/// `steady wait` against the real API server.
@Suite struct WaitLiveTests {
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
            let isMet = try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await WaitCommand.wait(
                        for: Kinds.route, name: "doomed", condition: .delete, once: false, client: client,
                        progress: progress)
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(300))
                    _ = try await client.delete(Kinds.route, name: "doomed")
                    try await Task.sleep(for: .seconds(10))
                    return false
                }
                let first = try await group.next() ?? false
                group.cancelAll()
                return first
            }
            #expect(isMet)
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

            let start = ContinuousClock.now
            let stuck = try WaitCommand.parse(
                ["--for=condition=Ready", "route/ready", "route/stuck", "--timeout", "1s"] + context.flags)
            await #expect(throws: ExitCode.failure) { try await stuck.run() }
            #expect(ContinuousClock.now - start < .seconds(5))

            // Set while waiting: the watch sees it.
            let later = try WaitCommand.parse(["--for=condition=Ready", "route", "stuck", "--timeout", "10s"] + context.flags)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(for: .milliseconds(300))
                    _ = try await client.mergePatch(
                        Kinds.route, name: "stuck", patch: Self.readyPatch, subresource: "status")
                }
                try await later.run()
                try await group.waitForAll()
            }
        }
    }
}
