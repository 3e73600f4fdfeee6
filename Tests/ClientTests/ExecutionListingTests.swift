import ArgumentParser
import AsyncHTTPClient
import Events
import Foundation
import Logging
import Reconciler
import Resources
import SteadyTesting
import Testing

@testable import Client

/// `steady get executions`: the read-only Execution kind resolves for `get` (and only for reading), and the server
/// answers its list, one record by name and the Table `get` prints.
@Suite(.timeLimit(.minutes(2))) struct ExecutionListingTests {
    @Test func executionsResolveForGetAndAreRefusedForWrites() throws {
        for text in ["executions", "execution", "Execution", "executions.steady.dev"] {
            #expect(try CommandSupport.kind(text, readOnly: true).kind == "Execution")
        }
        let listed = try CommandSupport.references(["executions"], allowKindOnly: true, readOnly: true)
        #expect(listed.map(\.info.kind) == ["Execution"] && listed[0].names.isEmpty)
        // delete, wait, describe...: a read-only kind is named, and refused with what to do instead.
        #expect(throws: CommandError.self) { try CommandSupport.references(["executions"], allowKindOnly: true) }
        #expect(!Kinds.all.contains { $0.kind == "Execution" })
        #expect(CommandSupport.unknownKind("executon").message.hasSuffix("did you mean \"execution\"?"))
    }

    @Test func theServerListsExecutionsAsATableAndByName() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-executions")
        defer { directory.remove() }
        let store = try EventStore(path: directory.file("events.db").path)
        let record = { (route: String, attempt: Int, result: ExecutionRecord.Result, error: String?) in
            ExecutionRecord(
                time: 1_700_000_000_000, eventID: "e1", route: route, action: "hook", location: "controller",
                attempt: attempt, result: result, durationMilliseconds: 12, error: error, deliveryID: "d-\(route)")
        }
        var logger = Logger(label: "executions-test")
        logger.logLevel = .critical
        let pipeline = EventPipeline(
            configuration: .init(location: "controller"), store: store, httpClient: EventPipeline.sharedHTTPClient,
            metrics: EventMetrics(registry: APIMetrics().registry), logger: logger)
        try await pipeline.acceptReport([
            record("scans", 1, .retrying, "POST http://127.0.0.1/hook: the receiver answered 503"),
            record("scans", 2, .succeeded, nil), record("audit", 1, .succeeded, nil),
        ])
        try await LiveServer.with(events: pipeline) { context in
            let client = context.client
            let table = try await client.table(Kinds.execution)
            #expect(
                table.headers(wide: false)
                    == ["NAME", "ROUTE", "ACTION", "LOCATION", "ATTEMPT", "RESULT", "DURATION", "AGE"])
            #expect(table.headers(wide: true).suffix(2) == ["EVENT", "ERROR"])
            // Newest first.
            #expect(table.rows.map(\.name) == ["d-audit-1", "d-scans-2", "d-scans-1"])
            #expect(table.rows.last.map { table.cells(of: $0, wide: false) }?.prefix(7) == [
                "d-scans-1", "scans", "hook", "controller", "1", "Retrying", "12ms",
            ])
            let scans = try await client.table(Kinds.execution, labelSelector: "route=scans")
            #expect(scans.rows.map(\.name) == ["d-scans-2", "d-scans-1"])
            let one = try await client.table(Kinds.execution, name: "d-scans-1")
            #expect(one.rows.map(\.name) == ["d-scans-1"])
            let object = try await client.get(Kinds.execution, name: "d-audit-1")
            #expect(object["spec"]?["route"]?.stringValue == "audit")
            #expect(try await client.list(Kinds.execution).items.count == 3)
            await #expect(throws: APIClientError.self) { try await client.get(Kinds.execution, name: "d-none-1") }
        }
        store.close()
    }
}
