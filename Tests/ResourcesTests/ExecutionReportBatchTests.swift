import Foundation
import Testing

@testable import Resources

/// A runner writes its execution reports by hand; the controller decodes them with `JSONDecoder`. They must agree.
@Suite struct ExecutionReportBatchTests {
    @Test func theWrittenBatchDecodesToTheSameRecords() throws {
        let batch = ExecutionReportBatch(executions: [
            ExecutionRecord(
                sequence: 7, time: 1_796_284_003_744, eventID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", route: "r1",
                action: "deliver", location: "runner-1", attempt: 1, result: .succeeded, durationMilliseconds: 2,
                error: nil, deliveryID: "d1"),
            ExecutionRecord(
                sequence: 8, time: -1, eventID: "e\"2\\", route: "ré", action: "a\tb", location: "runner-1",
                attempt: 3, result: .failed, durationMilliseconds: 30_000,
                error: "POST http://x/: the receiver answered 503\nline two \u{1}", deliveryID: "d2"),
        ])
        let bytes = batch.jsonBytes()
        #expect(try JSONDecoder().decode(ExecutionReportBatch.self, from: Data(bytes)) == batch)
        // The same members as the Codable form, which leaves out an absent error.
        let written = try JSONValue.parse(Data(bytes))
        let encoded = try JSONValue.parse(try JSONEncoder().encode(batch))
        #expect(written == encoded)
        #expect(ExecutionReportBatch(executions: []).jsonBytes() == Array(#"{"executions":[]}"#.utf8))
    }
}
