import Foundation
import Testing

@testable import Resources

/// A runner writes its execution reports by hand and the controller reads them by hand; both must agree with the
/// `Codable` form.
@Suite struct ExecutionReportBatchTests {
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

    @Test func theWrittenBatchDecodesToTheSameRecords() throws {
        let bytes = batch.jsonBytes()
        #expect(try JSONDecoder().decode(ExecutionReportBatch.self, from: Data(bytes)) == batch)
        // The same members as the Codable form, which leaves out an absent error.
        let written = try JSONValue.parse(Data(bytes))
        let encoded = try JSONValue.parse(try JSONEncoder().encode(batch))
        #expect(written == encoded)
        #expect(ExecutionReportBatch(executions: []).jsonBytes() == Array(#"{"executions":[]}"#.utf8))
    }

    @Test func theReadBatchIsTheSameAsDecoded() throws {
        #expect(try ExecutionReportBatch(json: Data(batch.jsonBytes())) == batch)
        #expect(try ExecutionReportBatch(json: try JSONEncoder().encode(batch)) == batch)
        #expect(try ExecutionReportBatch(json: Data(#"{"executions":[]}"#.utf8)) == ExecutionReportBatch(executions: []))
    }

    @Test func aBadReportIsRefusedNamingTheField() {
        func problem(_ json: String) -> String {
            do {
                _ = try ExecutionReportBatch(json: Data(json.utf8))
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let good = String(decoding: batch.jsonBytes(), as: UTF8.self)
        #expect(problem(#"{"executions":{}}"#) == "executions: expected an array of execution records")
        #expect(problem(#"{"executions":[1]}"#) == "executions[0]: expected an object")
        #expect(problem(good.replacingOccurrences(of: #""route":"ré""#, with: #""route":7"#))
            == "executions[1].route: expected a string")
        #expect(problem(good.replacingOccurrences(of: #""result":"Failed""#, with: #""result":"Lost""#))
            == "executions[1].result: expected Succeeded, Retrying or Failed")
        #expect(problem(good.replacingOccurrences(of: #""attempt":3"#, with: #""attempt":3.5"#))
            == "executions[1].attempt: expected an integer")
        #expect(problem(good.replacingOccurrences(of: #""time":-1,"#, with: "")) == "executions[1].time: expected an integer")
        #expect(problem("{") != "accepted")
    }
}
