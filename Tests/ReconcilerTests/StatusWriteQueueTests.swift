import Testing

@testable import Reconciler

/// The order in which the agent gateway writes Runner statuses: no store, no tasks.
@Suite(.timeLimit(.minutes(1))) struct StatusWriteQueueTests {
    typealias Queue = StatusWriteQueue<String>

    /// Runs the writer of `runner` until it has nothing left; returns the statuses it wrote.
    static func drain(_ queue: inout Queue, _ runner: String) -> [String] {
        var written: [String] = []
        while let status = queue.next(for: runner) { written.append(status) }
        return written
    }

    @Test func aReportTakesARunnerOutOfTheSliceChangeLane() {
        var queue = Queue()
        // An apply changes three runners' slices: one wake per runner for the one slice-change writer.
        for runner in ["a", "b", "c"] {
            #expect(queue.post("\(runner): SyncPending", runner: runner, lane: .sliceChange) == .sliceChangeWriter)
        }
        // b's agent reports the new slice before the writer reaches b: b is written at once, and once.
        #expect(queue.post("b: Synced", runner: "b", lane: .report) == .reportWriter)
        #expect(Self.drain(&queue, "b") == ["b: Synced"])
        #expect(queue.takeSliceChange() == "a")
        #expect(Self.drain(&queue, "a") == ["a: SyncPending"])
        #expect(queue.takeSliceChange() == "c")
        #expect(Self.drain(&queue, "c") == ["c: SyncPending"])
        #expect(queue.takeSliceChange() == nil)
        #expect(queue.writing.isEmpty)
    }

    @Test func aRunnerHasOneWriterThatWritesItsNewestStatus() {
        var queue = Queue()
        #expect(queue.post("1", runner: "a", lane: .report) == .reportWriter)
        // While a's writer runs, newer statuses replace each other and wake no second writer, in either lane.
        #expect(queue.next(for: "a") == "1")
        #expect(queue.post("2", runner: "a", lane: .report) == .none)
        #expect(queue.post("3", runner: "a", lane: .sliceChange) == .none)
        #expect(queue.takeSliceChange() == nil)
        #expect(Self.drain(&queue, "a") == ["3"])
        #expect(!queue.writing.contains("a"))
        // Posted twice to the slice-change lane before its writer comes: one wake, the newest written.
        #expect(queue.post("4", runner: "a", lane: .sliceChange) == .sliceChangeWriter)
        #expect(queue.post("5", runner: "a", lane: .sliceChange) == .none)
        #expect(queue.takeSliceChange() == "a")
        #expect(Self.drain(&queue, "a") == ["5"])
    }

    @Test func aFailedWriteIsRetriedUnlessANewerStatusCame() {
        var queue = Queue()
        _ = queue.post("1", runner: "a", lane: .report)
        #expect(queue.next(for: "a") == "1")
        queue.retry("1", runner: "a")
        #expect(queue.next(for: "a") == "1")
        _ = queue.post("2", runner: "a", lane: .report)
        queue.retry("1", runner: "a")
        #expect(Self.drain(&queue, "a") == ["2"])
        // A writer ended by shutdown leaves the runner free for the next one.
        _ = queue.post("3", runner: "a", lane: .report)
        queue.abandon(runner: "a")
        #expect(queue.post("4", runner: "a", lane: .report) == .reportWriter)
    }
}
