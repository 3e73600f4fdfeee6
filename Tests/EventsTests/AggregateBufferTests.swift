import Testing

@testable import Events

@Suite struct AggregateBufferTests {
    func item(_ id: String, at time: Int64) -> AggregateBuffer.Item {
        AggregateBuffer.Item(eventID: id, message: Array("{\"id\":\"\(id)\"}".utf8), heldAt: time)
    }

    @Test func releasesOnceCountItemsHaveGathered() {
        var buffer = AggregateBuffer(count: 3, timeout: nil)
        #expect(buffer.add(item("a", at: 0)) == .hold(deadline: nil))
        #expect(buffer.add(item("b", at: 1)) == .hold(deadline: nil))
        #expect(buffer.add(item("c", at: 2)) == .release([item("a", at: 0), item("b", at: 1), item("c", at: 2)]))
        #expect(buffer.items.isEmpty)
    }

    @Test func releasesWhatGatheredWhenTheFirstHasWaitedTheTimeout() {
        var buffer = AggregateBuffer(count: 10, timeout: 1_000)
        #expect(buffer.add(item("a", at: 100)) == .hold(deadline: 1_100))
        #expect(buffer.add(item("b", at: 600)) == .hold(deadline: 1_100))
        #expect(buffer.expire(now: 1_099) == .hold(deadline: 1_100))
        #expect(buffer.expire(now: 1_100) == .release([item("a", at: 100), item("b", at: 600)]))
        #expect(buffer.deadline == nil)
    }

    @Test func anEmptyBufferHasNoDeadlineAndReleasesNothing() {
        var buffer = AggregateBuffer(count: nil, timeout: 50)
        #expect(buffer.deadline == nil)
        #expect(buffer.expire(now: 1_000_000) == .hold(deadline: nil))
    }

    @Test func heldItemsReloadedAfterARestartKeepTheirDeadline() {
        let buffer = AggregateBuffer(count: 5, timeout: 1_000, items: [item("a", at: 10)])
        #expect(buffer.deadline == 1_010)
    }

    @Test func jsonMessagesCombineIntoAnArrayAndTextIntoLines() {
        #expect(
            String(decoding: AggregateBuffer.combine([item("a", at: 0), item("b", at: 0)]), as: UTF8.self)
                == #"[{"id":"a"},{"id":"b"}]"#)
        let text = [
            AggregateBuffer.Item(eventID: "a", message: Array("one".utf8), heldAt: 0),
            AggregateBuffer.Item(eventID: "b", message: Array("two".utf8), heldAt: 0),
        ]
        #expect(String(decoding: AggregateBuffer.combine(text), as: UTF8.self) == "one\ntwo")
    }
}
