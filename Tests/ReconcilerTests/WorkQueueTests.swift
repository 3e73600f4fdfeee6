import Reconciler
import Synchronization
import Testing

/// A clock that moves only when told to, so backoff is tested without sleeping.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var id: Int
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var nextID = 0
    }

    private let state = Mutex(State())

    var now: Instant { state.withLock { $0.now } }
    var minimumResolution: Duration { .zero }

    /// The number of tasks sleeping on the clock.
    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = state.withLock { state -> Result<Void, any Error>? in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Waits (yielding, bounded) until at least `count` tasks sleep on the clock.
    func waitForSleepers(_ count: Int) async throws {
        for _ in 0..<100_000 where sleeperCount < count {
            await Task.yield()
        }
        #expect(sleeperCount >= count)
    }
}

/// A value shared between test tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}

@Suite(.timeLimit(.minutes(5))) struct WorkQueueTests {
    @Test func addingAQueuedKeyAgainQueuesItOnce() async throws {
        let queue = WorkQueue<String>()
        queue.add("a")
        queue.add("b")
        queue.add("a")
        queue.add("a")
        #expect(queue.depth == 2)
        #expect(await queue.get() == "a")
        #expect(await queue.get() == "b")
        #expect(queue.depth == 0)
    }

    @Test func aKeyIsNeverProcessedByTwoWorkersAtOnce() async throws {
        let queue = WorkQueue<String>()
        queue.add("a")
        let first = await queue.get()
        #expect(first == "a")
        queue.add("a")
        queue.add("b")
        // "a" is processing: the next get must skip it even though it was added again.
        #expect(await queue.get() == "b")
        #expect(queue.depth == 0)
        queue.done("b")
        queue.done("a")
        #expect(queue.depth == 1)
        #expect(await queue.get() == "a")
        queue.done("a")
        #expect(queue.depth == 0)
        #expect(queue.processingCount == 0)
    }

    @Test func keysAddedWhileProcessingAreQueuedOnceAfterDone() async throws {
        let queue = WorkQueue<String>()
        queue.add("a")
        #expect(await queue.get() == "a")
        queue.add("a")
        queue.add("a")
        #expect(queue.depth == 0)
        queue.done("a")
        #expect(queue.depth == 1)
        #expect(await queue.get() == "a")
        queue.done("a")
        #expect(queue.depth == 0)
    }

    @Test func concurrentWorkersNeverOverlapOnAKey() async throws {
        let queue = WorkQueue<Int>()
        let active = Locked<Set<Int>>([])
        let overlaps = Locked(0)
        let processed = Locked(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    while let key = await queue.get() {
                        let inserted = active.withLock { $0.insert(key).inserted }
                        if !inserted { overlaps.withLock { $0 += 1 } }
                        await Task.yield()
                        active.withLock { _ = $0.remove(key) }
                        processed.withLock { $0 += 1 }
                        queue.done(key)
                    }
                }
            }
            for round in 0..<200 {
                for key in 0..<10 { queue.add(key) }
                if round % 20 == 0 { await Task.yield() }
            }
            for _ in 0..<10_000 where queue.depth > 0 || queue.processingCount > 0 {
                await Task.yield()
            }
            queue.shutDown()
        }
        #expect(overlaps.withLock { $0 } == 0)
        // Adds collapse while a key is queued, so far fewer than 2,000 items are processed, but at least 10.
        let count = processed.withLock { $0 }
        #expect(count >= 10 && count < 2_000)
    }

    @Test func backoffDoublesPerKeyUpToTheCapAndForgetResetsIt() async throws {
        let clock = ManualClock()
        let queue = WorkQueue<String>(clock: clock)
        var delays: [Duration] = []
        for _ in 0..<16 { delays.append(queue.addRateLimited("a")) }
        #expect(
            delays.prefix(5) == [
                .milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(40), .milliseconds(80),
            ])
        #expect(delays.last == .seconds(60))
        #expect(delays.allSatisfy { $0 <= .seconds(60) })
        #expect(queue.failures(of: "a") == 16)
        #expect(queue.addRateLimited("b") == .milliseconds(5), "backoff is per key")
        queue.forget("a")
        #expect(queue.failures(of: "a") == 0)
        #expect(queue.addRateLimited("a") == .milliseconds(5))
    }

    @Test func rateLimitedKeysArriveOnlyWhenTheirBackoffHasPassed() async throws {
        let clock = ManualClock()
        let queue = WorkQueue<String>(clock: clock)
        queue.addRateLimited("a")  // 5 ms
        queue.addRateLimited("a")  // 10 ms, but "a" keeps its earlier deadline
        queue.addRateLimited("b")  // 5 ms
        queue.addRateLimited("b")  // 10 ms
        queue.addRateLimited("b")  // 20 ms
        #expect(queue.delayedCount == 2)
        clock.advance(by: .milliseconds(4))
        queue.moveDueKeys()
        #expect(queue.depth == 0)
        clock.advance(by: .milliseconds(1))
        #expect(queue.moveDueKeys() == nil, "later backoffs did not postpone the earlier deadlines")
        #expect(queue.depth == 2)
        #expect(queue.delayedCount == 0)
    }

    @Test func delayLoopWakesForAnEarlierDeadline() async throws {
        let clock = ManualClock()
        let queue = WorkQueue<String>(clock: clock)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await queue.run() }
            queue.add("late", after: .seconds(60))
            try await clock.waitForSleepers(1)
            queue.add("soon", after: .seconds(1))
            clock.advance(by: .seconds(1))
            #expect(await queue.get() == "soon")
            #expect(queue.delayedCount == 1)
            clock.advance(by: .seconds(59))
            #expect(await queue.get() == "late")
            queue.shutDown()
            try await group.waitForAll()
        }
    }

    @Test func shutDownWakesWaitingWorkers() async throws {
        let queue = WorkQueue<String>()
        await withTaskGroup(of: String?.self) { group in
            for _ in 0..<3 { group.addTask { await queue.get() } }
            for _ in 0..<1_000 { await Task.yield() }
            queue.shutDown()
            var results: [String?] = []
            for await result in group { results.append(result) }
            #expect(results == [nil, nil, nil])
        }
        queue.add("a")
        #expect(queue.depth == 0, "adds after shutdown are ignored")
        #expect(await queue.get() == nil)
        #expect(queue.isShuttingDown)
    }

    @Test func cancellingAWaitingGetReturnsNil() async throws {
        let queue = WorkQueue<String>()
        await withTaskGroup(of: String?.self) { group in
            group.addTask { await queue.get() }
            for _ in 0..<100 { await Task.yield() }
            group.cancelAll()
            #expect(await group.next() == .some(nil))
        }
        queue.add("a")
        #expect(await queue.get() == "a", "a cancelled waiter does not swallow keys")
    }

    @Test func depthIsReported() async throws {
        let reported = Locked<[Int]>([])
        let queue = WorkQueue<String>(depthObserver: { depth in reported.withLock { $0.append(depth) } })
        queue.add("a")
        queue.add("b")
        _ = await queue.get()
        #expect(reported.withLock { $0.last } == 1)
        #expect(reported.withLock { $0.max() } == 2)
    }
}
