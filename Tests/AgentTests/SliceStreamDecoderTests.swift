import Agent
import Foundation
import Resources
import Testing

@Suite(.timeLimit(.minutes(5))) struct SliceStreamDecoderTests {
    func line(_ message: SliceMessage) -> [UInt8] {
        Array(try! JSONValue(encoding: message).jsonData()) + [UInt8(ascii: "\n")]
    }

    @Test func splitsMessagesAcrossChunks() throws {
        let first = SliceFixtures.snapshot(3, [SliceFixtures.httpAction("notify")])
        let second = SliceMessage(type: .keepalive, revision: 3, digest: first.digest)
        let bytes = line(first) + line(second) + [UInt8(ascii: "\n")]
        var decoder = SliceStreamDecoder()
        var decoded: [SliceMessage] = []
        var index = 0
        for size in [7, 1, 50, 3, 1000, 100_000] where index < bytes.count {
            let end = min(index + size, bytes.count)
            decoded += try decoder.feed(bytes[index..<end])
            index = end
        }
        #expect(decoded == [first, second])
        #expect(!decoder.hasPartialLine)
    }

    @Test func refusesALineThatIsTooLongOrNotAMessage() {
        var small = SliceStreamDecoder(maximumLineLength: 10)
        #expect(throws: AgentError.self) { try small.feed(Array(repeating: UInt8(ascii: "a"), count: 11)) }
        var decoder = SliceStreamDecoder()
        #expect(throws: AgentError.self) { try decoder.feed(Array("{\"nope\":1}\n".utf8)) }
    }
}
