import Foundation
import Resources
import Testing

@testable import Routing

/// Truncation on whole characters, and the Slack, Teams and PagerDuty payloads within their limits.
@Suite(.timeLimit(.minutes(5))) struct TextTruncationTests {
    @Test func textThatFitsIsUnchanged() {
        #expect(TextTruncation.truncate("hello", budget: 5) == "hello")
        #expect(TextTruncation.truncate("", budget: 0) == "")
    }

    @Test func oneUnitOverIsTruncatedWithTheNote() {
        let text = String(repeating: "a", count: 200)
        let result = TextTruncation.truncate(text, budget: 199)
        #expect(result.utf16.count <= 199)
        let kept = result.prefix { $0 == "a" }
        #expect(result == kept + TextTruncation.note(omitted: 200 - kept.count))
    }

    @Test func emojiAreNeverCutInHalf() {
        // Each siren is 2 UTF-16 units and 4 UTF-8 bytes; an odd budget would split one if cut by units.
        let text = String(repeating: "🚨", count: 100)
        for budget in 60...71 {
            let result = TextTruncation.truncate(text, budget: budget)
            #expect(result.utf16.count <= budget)
            let kept = result.prefix { $0 == "🚨" }
            #expect(result == kept + TextTruncation.note(omitted: 100 - kept.count))
            #expect(!kept.isEmpty)
        }
    }

    @Test func combiningSequencesStayWhole() {
        // "é" written as e + U+0301: a cut between them would leave a bare "e".
        let text = String(repeating: "e\u{301}", count: 50)
        let result = TextTruncation.prefix(of: text, budget: 7)
        #expect(result.unicodeScalars.count == 6)
        #expect(result == String(repeating: "e\u{301}", count: 3))
    }

    @Test func jsonBytesCountEscapes() {
        let text = "a\"\\\n\u{1}é"
        #expect(TextTruncation.Measure.jsonBytes.cost(of: text) == JSONValue.string(text).jsonData().count - 2)
    }

    @Test func aBudgetSmallerThanTheNoteKeepsPartOfTheNote() {
        let result = TextTruncation.truncate(String(repeating: "x", count: 1000), budget: 10)
        #expect(result.utf16.count <= 10)
        #expect(TextTruncation.note(omitted: 1000).hasPrefix(result))
    }
}

@Suite(.timeLimit(.minutes(5))) struct SlackPayloadTests {
    func sections(_ payload: JSONValue) -> [String] {
        (payload["blocks"]?.arrayValue ?? []).filter { $0["type"] == "section" }
            .compactMap { $0["text"]?["text"]?.stringValue }
    }

    @Test func shortMessageHasAHeaderAndOneSection() {
        let payload = SlackPayload.make(title: "Alpine image\nscanned", message: "*3* critical findings")
        #expect(payload["text"] == "Alpine image scanned")
        #expect(payload["blocks"]?.item(0)?["type"] == "header")
        #expect(payload["blocks"]?.item(0)?["text"]?["text"] == "Alpine image scanned")
        #expect(sections(payload) == ["*3* critical findings"])
    }

    @Test func longMessageIsSplitOverSectionsAtLineBreaks() {
        let line = String(repeating: "v", count: 99) + "\n"
        let message = String(repeating: line, count: 50)
        let parts = sections(SlackPayload.make(title: nil, message: message))
        #expect(parts.count == 2)
        #expect(parts.allSatisfy { $0.utf16.count <= 3000 && $0.hasSuffix("\n") })
        #expect(parts.joined() == message)
    }

    @Test func oversizeMessageIsTruncatedWithAVisibleNote() {
        let message = String(repeating: "ü🚨", count: 30_000)
        let limits = SlackPayload.Limits()
        let payload = SlackPayload.make(title: String(repeating: "🚨", count: 100), message: message)
        let parts = sections(payload)
        #expect(parts.count <= limits.maximumSections)
        #expect(parts.allSatisfy { $0.utf16.count <= limits.sectionCharacters })
        #expect(parts.last?.contains("(truncated by steady:") == true)
        #expect(parts.joined().hasPrefix(String(repeating: "ü🚨", count: 1000)))
        let header = payload["blocks"]?.item(0)?["text"]?["text"]?.stringValue ?? ""
        #expect(header.utf16.count <= limits.headerCharacters)
        #expect(header.hasPrefix("🚨🚨") && header.contains("truncated"))
        #expect((payload["text"]?.stringValue ?? "").utf16.count <= limits.fallbackCharacters)
    }

    @Test func emptyMessageStillHasText() {
        let payload = SlackPayload.make(title: nil, message: "  \n")
        #expect(payload["text"] == "(empty message)")
        #expect(payload["blocks"] == nil)
    }
}

@Suite(.timeLimit(.minutes(5))) struct TeamsPayloadTests {
    @Test func adaptiveCardCarriesTitleAndMessage() {
        let payload = TeamsPayload.make(title: "Tracee finding", message: "TRC-2 on web-1")
        #expect(payload["type"] == "message")
        let card = payload["attachments"]?.item(0)?["content"]
        #expect(payload["attachments"]?.item(0)?["contentType"] == "application/vnd.microsoft.card.adaptive")
        #expect(card?["type"] == "AdaptiveCard")
        #expect(card?["body"]?.item(0)?["text"] == "Tracee finding")
        #expect(card?["body"]?.item(1)?["text"] == "TRC-2 on web-1")
    }

    @Test func messageCardCarriesTitleAndMessage() {
        let payload = TeamsPayload.make(title: "Tracee finding", message: "TRC-2", format: .messageCard)
        #expect(payload["@type"] == "MessageCard")
        #expect(payload["title"] == "Tracee finding")
        #expect(payload["summary"] == "Tracee finding")
        #expect(payload["text"] == "TRC-2")
    }

    @Test func oversizeMessageFitsThePayloadLimitEvenWhenEscapingGrowsIt() {
        // Quotes and control characters take 2 and 6 bytes in JSON; "é" takes 2 and "🚨" 4 in UTF-8.
        let message = String(repeating: "\"\u{1}é🚨\n", count: 20_000)
        for format in TeamsPayload.Format.allCases {
            for limit in [2_000, 2_001, 2_002, 2_003, 27 * 1024] {
                let limits = TeamsPayload.Limits(payloadBytes: limit)
                let payload = TeamsPayload.make(title: "t", message: message, format: format, limits: limits)
                let size = payload.jsonData().count
                #expect(size <= limit)
                #expect(size > limit - 12, "the message should fill the room: \(size) of \(limit)")
                let adaptive = payload["attachments"]?.item(0)?["content"]?["body"]?.item(1)?["text"]
                let text = (format == .messageCard ? payload["text"] : adaptive)?.stringValue ?? ""
                #expect(text.hasPrefix("\"\u{1}é🚨\n"))
                #expect(text.contains("(truncated by steady:"))
            }
        }
    }

    @Test func messageThatFitsIsWhole() {
        let message = String(repeating: "x", count: 20_000)
        let payload = TeamsPayload.make(title: nil, message: message, format: .messageCard)
        #expect(payload["text"]?.stringValue == message)
        #expect(payload["title"] == nil)
    }
}

@Suite(.timeLimit(.minutes(5))) struct PagerDutyPayloadTests {
    @Test func triggerEventHasEveryRequiredField() {
        let event = PagerDutyPayload.trigger(
            routingKey: "R0UT1NG", deliveryID: "0f6c0a3e-delivery", summary: "TRC-2 on web-1", severity: .critical,
            source: "web-1", customDetails: ["SigMetadata": ["ID": "TRC-2"]], timestamp: "2026-12-01T21:00:00Z")
        #expect(event["routing_key"] == "R0UT1NG")
        #expect(event["event_action"] == "trigger")
        #expect(event["dedup_key"] == "0f6c0a3e-delivery")
        #expect(event["payload"]?["summary"] == "TRC-2 on web-1")
        #expect(event["payload"]?["severity"] == "critical")
        #expect(event["payload"]?["source"] == "web-1")
        #expect(event["payload"]?["timestamp"] == "2026-12-01T21:00:00Z")
        #expect(event["payload"]?["custom_details"]?["SigMetadata"]?["ID"] == "TRC-2")
    }

    @Test func summaryIsCutTo1024OnWholeCharacters() {
        let summary = String(repeating: "e\u{301}🚨", count: 600)
        let event = PagerDutyPayload.trigger(routingKey: "k", deliveryID: "d", summary: summary, source: "")
        let cut = event["payload"]?["summary"]?.stringValue ?? ""
        #expect(cut.utf16.count <= 1024)
        #expect(cut.utf16.count > 1024 - 60)
        let kept = cut.prefix { $0 == "e\u{301}" || $0 == "🚨" }
        #expect(cut == kept + TextTruncation.note(omitted: 1200 - kept.count))
        #expect(event["payload"]?["source"] == "steady")
        #expect(event["payload"]?["severity"] == "error")
    }

    @Test func oversizeDetailsBecomeATruncatedText() {
        let details: JSONValue = ["log": .string(String(repeating: "line \"quoted\"\n", count: 60_000))]
        let event = PagerDutyPayload.trigger(
            routingKey: "k", deliveryID: "d", summary: "s", source: "x", customDetails: details)
        #expect(event.jsonData().count <= PagerDutyPayload.payloadBytes)
        let text = event["payload"]?["custom_details"]?.stringValue ?? ""
        #expect(text.hasPrefix("{\"log\":\"line \\\"quoted\\\"\\n"))
        #expect(text.contains("(truncated by steady:"))
    }
}

extension JSONValue {
    /// The element at `index` of an array.
    fileprivate func item(_ index: Int) -> JSONValue? {
        guard let items = arrayValue, items.indices.contains(index) else { return nil }
        return items[index]
    }
}
