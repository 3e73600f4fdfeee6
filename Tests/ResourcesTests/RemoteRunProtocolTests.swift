import Foundation
import Testing

@testable import Resources

/// The run messages of the agent stream: every message survives a round trip, and bad lines are refused by name.
@Suite(.timeLimit(.minutes(5))) struct RemoteRunProtocolTests {
    static let uid = "6f1c2a9e-1d4b-4a8e-9a57-0c3f7d2b1e11"

    func withoutNewline(_ line: [UInt8]) -> [UInt8] {
        #expect(line.last == UInt8(ascii: "\n"))
        return Array(line.dropLast())
    }

    @Test func controllerMessagesRoundTrip() throws {
        let messages: [RunControllerMessage] = [
            .request(
                RunRequest(
                    runUID: Self.uid, runName: "inventory", conditions: ["force_inventory"],
                    command: ["/usr/bin/uptime"], timeoutMilliseconds: 30_000, maxOutputBytes: 4096)),
            .request(RunRequest(runUID: Self.uid, runName: "inventory")),
            .cancel(RunCancel(runUID: Self.uid)),
            .acknowledge(RunAcknowledge(runUID: Self.uid)),
        ]
        for message in messages {
            let line = withoutNewline(try message.line())
            #expect(!line.contains(UInt8(ascii: "\n")))
            #expect(try RunControllerMessage.decode(line: line) == message)
            // A controller message is not an agent message: an agent cannot send a request.
            #expect(try RunAgentMessage.decode(line: line) == nil)
        }
    }

    @Test func agentMessagesRoundTrip() throws {
        let messages: [RunAgentMessage] = [
            .accepted(RunAccepted(runUID: Self.uid)),
            .started(RunStarted(runUID: Self.uid, startTime: "2026-12-01T18:30:00Z")),
            .output(RunOutputChunk(runUID: Self.uid, stream: .stderr, sequence: 3, bytes: [0, 255, 10, 65])),
            .result(
                RunResult(
                    runUID: Self.uid, phase: .timedOut, signal: 15, startTime: "2026-12-01T18:30:00Z",
                    completionTime: "2026-12-01T18:30:05.250Z", outputBytes: 30_000_000, outputTruncated: true,
                    reason: "Timeout", message: "killed after 5s")),
            .refused(
                RunRefused(runUID: Self.uid, reason: .execNotAllowed, message: "start the agent with --allow-exec")),
        ]
        for message in messages {
            let line = withoutNewline(try message.line())
            #expect(try RunAgentMessage.decode(line: line) == message)
            #expect(try RunControllerMessage.decode(line: line) == nil)
        }
        let chunk = RunOutputChunk(runUID: Self.uid, stream: .stdout, sequence: 0, bytes: [0, 255, 10])
        #expect(chunk.bytes == [0, 255, 10])
    }

    @Test func sliceLinesAreNotRunMessages() throws {
        let keepalive = SliceMessage(type: .keepalive, revision: 3)
        let line = Array(try JSONValue(encoding: keepalive).jsonData())
        #expect(try RunControllerMessage.decode(line: line) == nil)
        let report = Array(try JSONValue(encoding: AgentReport(synced: true)).jsonData())
        #expect(try RunAgentMessage.decode(line: report) == nil)
    }

    @Test func outputIsSplitIntoBoundedChunksInOrder() throws {
        let bytes = (0..<(RunProtocol.maximumChunkBytes * 2 + 5)).map { UInt8($0 % 251) }
        let chunks = RunOutputChunk.chunks(runUID: Self.uid, stream: .stdout, firstSequence: 7, bytes: bytes)
        #expect(chunks.map(\.sequence) == [7, 8, 9])
        #expect(
            chunks.compactMap(\.bytes).map(\.count) == [
                RunProtocol.maximumChunkBytes, RunProtocol.maximumChunkBytes, 5,
            ])
        #expect(chunks.compactMap(\.bytes).flatMap { $0 } == bytes)
        for chunk in chunks {
            let line = try RunAgentMessage.output(chunk).line()
            #expect(line.count < RunProtocol.maximumLineLength)
        }
    }

    func agentError(_ json: String) -> String? {
        do {
            _ = try RunAgentMessage.decode(line: Array(json.utf8))
            return nil
        } catch {
            return error.message
        }
    }

    @Test func anOversizedChunkIsRefused() {
        let data = Data(repeating: 7, count: RunProtocol.maximumChunkBytes + 1).base64EncodedString()
        let json = #"{"type":"runOutput","runUID":"u","stream":"stdout","sequence":0,"data":"\#(data)"}"#
        #expect(agentError(json)?.hasPrefix("runOutput: chunk of") == true)
        let fits = Data(repeating: 7, count: RunProtocol.maximumChunkBytes).base64EncodedString()
        #expect(
            agentError(#"{"type":"runOutput","runUID":"u","stream":"stdout","sequence":0,"data":"\#(fits)"}"#) == nil)
    }

    @Test func anOversizedLineIsRefusedBeforeParsing() throws {
        let line = [UInt8](repeating: UInt8(ascii: " "), count: RunProtocol.maximumLineLength + 1)
        #expect(throws: RunProtocolError.self) { try RunAgentMessage.decode(line: line) }
        // Down the stream, a long line is a slice (many secrets), never a run message: left to the slice decoder.
        #expect(try RunControllerMessage.decode(line: line) == nil)
    }

    @Test func malformedMessagesAreRefusedWithTheirField() {
        #expect(agentError("not json")?.hasPrefix("a line is not JSON") == true)
        #expect(agentError("[1]") == "a line is not a JSON object")
        #expect(
            agentError(#"{"type":"runStarted","runUID":"u"}"#) == "runStarted: startTime: required field is missing")
        #expect(
            agentError(#"{"type":"runOutput","runUID":"u","stream":"stdin","sequence":0,"data":""}"#)?.hasPrefix(
                "runOutput: stream") == true)
        #expect(
            agentError(#"{"type":"runOutput","runUID":"u","stream":"stdout","sequence":0,"data":"%%%"}"#)
                == "runOutput: data is not base64")
        #expect(
            agentError(#"{"type":"runOutput","runUID":"u","stream":"stdout","sequence":-1,"data":""}"#)
                == "runOutput: sequence must not be negative")
        func result(phase: String, completionTime: String) -> String {
            #"{"type":"runResult","runUID":"u","phase":"\#(phase)","completionTime":"\#(completionTime)","#
                + #""outputBytes":0,"outputTruncated":false}"#
        }
        #expect(
            agentError(result(phase: "Running", completionTime: "2026-12-01T18:30:00Z"))
                == "runResult: phase Running is not a final phase")
        #expect(
            agentError(result(phase: "Failed", completionTime: "yesterday"))
                == "completionTime \"yesterday\" is not an RFC 3339 time")
        #expect(agentError(result(phase: "Failed", completionTime: "2026-12-01T18:30:00.250Z")) == nil)
        #expect(agentError(#"{"type":"runAccepted","runUID":""}"#)?.hasPrefix("runUID must be") == true)
        #expect(
            agentError(#"{"type":"runRefused","runUID":"u","reason":"Bored"}"#)?.hasPrefix("runRefused: reason") == true
        )
    }

    @Test func aRequestWithARelativeCommandOrBadConditionIsRefused() {
        func requestError(_ json: String) -> String? {
            do {
                _ = try RunControllerMessage.decode(line: Array(json.utf8))
                return nil
            } catch {
                return error.message
            }
        }
        #expect(
            requestError(#"{"type":"runRequest","runUID":"u","runName":"r","conditions":[],"maxOutputBytes":1}"#) == nil
        )
        #expect(
            requestError(
                #"{"type":"runRequest","runUID":"u","runName":"r","conditions":[],"command":["sh"],"maxOutputBytes":1}"#
            )
                == "command must be a non-empty argv whose first word is an absolute path")
        #expect(
            requestError(#"{"type":"runRequest","runUID":"u","runName":"r","conditions":["a b"],"maxOutputBytes":1}"#)
                == "conditions[0] must match ^[A-Za-z0-9][A-Za-z0-9_]*$")
        #expect(
            requestError(#"{"type":"runRequest","runUID":"u","runName":"r","conditions":[],"maxOutputBytes":-1}"#)?
                .hasPrefix("maxOutputBytes must be") == true)
        #expect(
            requestError(#"{"type":"runRequest","runUID":"u","runName":"r","maxOutputBytes":1}"#)
                == "runRequest: conditions: required field is missing")
    }
}
