import Resources
import Synchronization

/// A work queue with client-go's semantics, for level-triggered controllers.
///
/// - A key is queued at most once however often it is added (the *dirty* set).
/// - A key handed out by `get()` is *processing* until `done(_:)`; it is never handed to a second worker
///   meanwhile. Adding it again while it is processing queues it once more, after `done(_:)`.
/// - `addRateLimited(_:)` re-adds a key after its per-key exponential backoff; `forget(_:)` resets the backoff.
/// - `add(_:after:)` adds a key later; keys waiting for their deadline are kept once, at their earliest deadline.
///   Deadlines are served by `run()`, which must be running for delayed and rate-limited adds to arrive.
/// - `shutDown()` wakes every waiting `get()`, which then returns nil. Unlike client-go, keys still queued are
///   dropped rather than drained: reconcilers are level-triggered and a new queue starts from a full list.
///
/// The clock is injected, so backoff can be tested with a manual clock and without sleeping.
public final class WorkQueue<Key: Hashable & Sendable>: Sendable {
    private let state: Mutex<State>
    private let clock: ElapsedClock
    /// The backoff applied by `addRateLimited(_:)`.
    public let backoff: Backoff
    private let depthObserver: (@Sendable (Int) -> Void)?

    /// Creates an empty queue.
    ///
    /// - Parameters:
    ///   - backoff: The per-key backoff of `addRateLimited(_:)`.
    ///   - clock: The clock that deadlines are measured and awaited with.
    ///   - depthObserver: Called with the number of queued keys whenever it changes (e.g. to set a gauge). It is
    ///     called while the queue's lock is held, so it must be quick and must not call back into the queue.
    public init<C: Clock>(
        backoff: Backoff = .perKeyRetry, clock: C, depthObserver: (@Sendable (Int) -> Void)? = nil
    ) where C.Duration == Duration {
        self.state = Mutex(State())
        self.clock = ElapsedClock(clock)
        self.backoff = backoff
        self.depthObserver = depthObserver
    }

    /// Creates an empty queue measuring time with the continuous clock.
    public convenience init(
        backoff: Backoff = .perKeyRetry, depthObserver: (@Sendable (Int) -> Void)? = nil
    ) {
        self.init(backoff: backoff, clock: ContinuousClock(), depthObserver: depthObserver)
    }

    // MARK: Adding

    /// Queues `key` unless it is already queued; a key being processed is queued again after `done(_:)`.
    public func add(_ key: Key) {
        let handoff = state.withLock { state in
            let handoff = state.enqueue(key)
            reportDepth(state)
            return handoff
        }
        handoff?.resume()
    }

    /// Queues `key` once `delay` has passed; a delay of zero or less adds it now.
    public func add(_ key: Key, after delay: Duration) {
        if delay <= .zero {
            add(key)
            return
        }
        let wakeup = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.isShuttingDown else { return nil }
            let deadline = clock.elapsed() + delay
            if let existing = state.deadlines[key], existing <= deadline { return nil }
            state.deadlines[key] = deadline
            state.sequence &+= 1
            state.heap.push(DelayedKey(deadline: deadline, sequence: state.sequence, key: key))
            return state.wakeDelayLoop(before: deadline)
        }
        wakeup?.resume()
    }

    /// Queues `key` after its backoff, which doubles with each call until `forget(_:)`; returns the delay.
    @discardableResult
    public func addRateLimited(_ key: Key) -> Duration {
        let delay = state.withLock { state in
            let failures = state.failures[key, default: 0]
            state.failures[key] = failures + 1
            return backoff.delay(attempt: failures)
        }
        add(key, after: delay)
        return delay
    }

    /// Resets the backoff of `key`, after it was processed successfully.
    public func forget(_ key: Key) {
        _ = state.withLock { $0.failures.removeValue(forKey: key) }
    }

    /// How many times `key` was rate-limited since it was last forgotten.
    public func failures(of key: Key) -> Int {
        state.withLock { $0.failures[key, default: 0] }
    }

    // MARK: Processing

    /// The next key to process, waiting until there is one; nil once the queue is shut down or the task is
    /// cancelled. Call `done(_:)` with the key when finished with it.
    public func get() async -> Key? {
        let immediate = state.withLock { state -> Key?? in
            if state.isShuttingDown { return .some(nil) }
            guard let key = state.dequeue() else { return nil }
            reportDepth(state)
            return .some(key)
        }
        if let immediate { return immediate }

        let id = state.withLock { state in
            state.nextWaiterID &+= 1
            return state.nextWaiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Key?, Never>) in
                let resumeNow = state.withLock { state -> Key?? in
                    if state.isShuttingDown || Task.isCancelled { return .some(nil) }
                    if let key = state.dequeue() {
                        reportDepth(state)
                        return .some(key)
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let resumeNow { continuation.resume(returning: resumeNow) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(returning: nil)
        }
    }

    /// Marks `key` as processed; if it was added while processing, it is queued again.
    public func done(_ key: Key) {
        let handoff = state.withLock { state -> Handoff? in
            state.processing.remove(key)
            guard state.dirty.contains(key), !state.isShuttingDown else { return nil }
            let handoff = state.push(key)
            reportDepth(state)
            return handoff
        }
        handoff?.resume()
    }

    /// Stops the queue: waiting and future `get()` calls return nil, and adds are ignored.
    public func shutDown() {
        let (waiters, wakeup) = state.withLock { state in
            state.isShuttingDown = true
            let waiters = state.waiters
            state.waiters.removeAll()
            let wakeup = state.delayLoopWakeup
            state.delayLoopWakeup = nil
            return (waiters, wakeup)
        }
        for waiter in waiters { waiter.continuation.resume(returning: nil) }
        wakeup?.resume()
    }

    /// True once `shutDown()` was called.
    public var isShuttingDown: Bool {
        state.withLock { $0.isShuttingDown }
    }

    /// The number of keys queued and not yet handed out.
    public var depth: Int {
        state.withLock { $0.count }
    }

    /// The number of keys queued and not yet handed out, per group (such as a key's kind); groups with none are
    /// left out. It walks the queue, so call it when asked (a scrape), not on every change.
    public func depths<Group: Hashable>(by group: (Key) -> Group) -> [Group: Int] {
        state.withLock { state in
            var depths: [Group: Int] = [:]
            for key in state.queue[state.head...] { depths[group(key), default: 0] += 1 }
            return depths
        }
    }

    /// The number of keys waiting for a delay or backoff to pass.
    public var delayedCount: Int {
        state.withLock { $0.deadlines.count }
    }

    /// The number of keys being processed.
    public var processingCount: Int {
        state.withLock { $0.processing.count }
    }

    // MARK: Delays

    /// Moves the keys whose deadline has passed into the queue; returns the next deadline still ahead, as time
    /// elapsed on the queue's clock since the queue was created. `run()` calls it; tests may call it directly.
    @discardableResult
    public func moveDueKeys() -> Duration? {
        let (handoffs, next) = state.withLock { state -> ([Handoff], Duration?) in
            let now = clock.elapsed()
            var handoffs: [Handoff] = []
            while let top = state.heap.peek() {
                guard state.deadlines[top.key] == top.deadline else {
                    _ = state.heap.pop()  // superseded by an earlier deadline for the same key
                    continue
                }
                guard top.deadline <= now else { break }
                _ = state.heap.pop()
                state.deadlines[top.key] = nil
                if let handoff = state.enqueue(top.key) { handoffs.append(handoff) }
            }
            reportDepth(state)
            return (handoffs, state.heap.peek()?.deadline)
        }
        for handoff in handoffs { handoff.resume() }
        return next
    }

    /// Serves delayed and rate-limited adds until the queue is shut down or the task is cancelled.
    public func run() async {
        while !Task.isCancelled && !isShuttingDown {
            let next = moveDueKeys()
            if let next {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { try? await self.clock.sleep(untilElapsed: next) }
                    group.addTask { await self.waitForEarlierDeadline(than: next) }
                    await group.next()
                    group.cancelAll()
                }
            } else {
                await waitForEarlierDeadline(than: nil)
            }
        }
    }

    /// Waits until a key is added with a deadline before `deadline` (any deadline when nil), the queue shuts down
    /// or the task is cancelled.
    private func waitForEarlierDeadline(than deadline: Duration?) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.isShuttingDown || Task.isCancelled || state.hasPendingWakeup {
                        state.hasPendingWakeup = false
                        return true
                    }
                    state.delayLoopWakeup = continuation
                    state.delayLoopDeadline = deadline
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let wakeup = state.withLock { state in
                defer { state.delayLoopWakeup = nil }
                return state.delayLoopWakeup
            }
            wakeup?.resume()
        }
    }

    private func reportDepth(_ state: borrowing State) {
        depthObserver?(state.count)
    }

    // MARK: State

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Key?, Never>
    }

    /// A key handed straight to a waiting `get()`.
    private struct Handoff {
        var continuation: CheckedContinuation<Key?, Never>
        var key: Key
        func resume() { continuation.resume(returning: key) }
    }

    private struct DelayedKey: Comparable {
        var deadline: Duration
        var sequence: UInt64
        var key: Key

        static func < (lhs: DelayedKey, rhs: DelayedKey) -> Bool {
            (lhs.deadline, lhs.sequence) < (rhs.deadline, rhs.sequence)
        }

        static func == (lhs: DelayedKey, rhs: DelayedKey) -> Bool {
            lhs.deadline == rhs.deadline && lhs.sequence == rhs.sequence
        }
    }

    private struct State {
        /// Queued keys in FIFO order, from `head` on.
        var queue: [Key] = []
        var head = 0
        /// Keys that need processing: queued ones, and processing ones added again.
        var dirty: Set<Key> = []
        var processing: Set<Key> = []
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var failures: [Key: Int] = [:]
        /// The earliest deadline of each delayed key; heap entries that disagree are stale.
        var deadlines: [Key: Duration] = [:]
        var heap = MinimumHeap<DelayedKey>()
        var sequence: UInt64 = 0
        var delayLoopWakeup: CheckedContinuation<Void, Never>?
        /// The deadline the delay loop sleeps until; nil while it waits for any delayed add.
        var delayLoopDeadline: Duration?
        /// A delayed add arrived while the delay loop was not waiting: its next wait returns at once.
        var hasPendingWakeup = false
        var isShuttingDown = false

        var count: Int { queue.count - head }

        /// Marks `key` dirty and queues it unless it is queued or processing; may hand it to a waiter.
        mutating func enqueue(_ key: Key) -> Handoff? {
            guard !isShuttingDown, dirty.insert(key).inserted, !processing.contains(key) else { return nil }
            return push(key)
        }

        /// Hands a dirty key to the first waiter, or appends it to the queue.
        mutating func push(_ key: Key) -> Handoff? {
            if !waiters.isEmpty {
                let waiter = waiters.removeFirst()
                dirty.remove(key)
                processing.insert(key)
                return Handoff(continuation: waiter.continuation, key: key)
            }
            queue.append(key)
            return nil
        }

        mutating func dequeue() -> Key? {
            guard head < queue.count else { return nil }
            let key = queue[head]
            head += 1
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024 && head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
            dirty.remove(key)
            processing.insert(key)
            return key
        }

        /// The delay loop's continuation, if a key due at `deadline` must wake it.
        mutating func wakeDelayLoop(before deadline: Duration) -> CheckedContinuation<Void, Never>? {
            guard let wakeup = delayLoopWakeup else {
                hasPendingWakeup = true
                return nil
            }
            if let sleepingUntil = delayLoopDeadline, sleepingUntil <= deadline { return nil }
            delayLoopWakeup = nil
            return wakeup
        }
    }
}

/// A clock read as time elapsed since it was captured, so a queue need not be generic over its clock.
private struct ElapsedClock: Sendable {
    let elapsed: @Sendable () -> Duration
    let sleepUntilElapsed: @Sendable (Duration) async throws -> Void

    init<C: Clock>(_ clock: C) where C.Duration == Duration {
        let start = clock.now
        elapsed = { start.duration(to: clock.now) }
        sleepUntilElapsed = { deadline in try await clock.sleep(until: start.advanced(by: deadline), tolerance: nil) }
    }

    func sleep(untilElapsed deadline: Duration) async throws {
        try await sleepUntilElapsed(deadline)
    }
}

/// A binary min-heap.
struct MinimumHeap<Element: Comparable> {
    private var elements: [Element] = []

    var isEmpty: Bool { elements.isEmpty }
    var count: Int { elements.count }

    func peek() -> Element? { elements.first }

    mutating func push(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard elements[child] < elements[parent] else { break }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !elements.isEmpty else { return nil }
        elements.swapAt(0, elements.count - 1)
        let top = elements.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < elements.count && elements[left] < elements[smallest] { smallest = left }
            if right < elements.count && elements[right] < elements[smallest] { smallest = right }
            if smallest == parent { break }
            elements.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
