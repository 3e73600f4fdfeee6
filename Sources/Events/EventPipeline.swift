import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import Resources
import ServiceLifecycle
import Synchronization

/// The event pipeline one process runs, the controller's or an agent's: intake into a durable queue, evaluation
/// against the route table, rendering, dedup and aggregation, a durable outbox delivered with retries, and an
/// execution record for every attempt.
///
/// Each action has a lane of its own with a concurrency limit and a bounded in-memory backlog (the rest waits in
/// the outbox), so one slow or failing receiver never delays another action's deliveries. A process killed at any
/// moment resumes from the queue and the outbox when it starts again.
public final class EventPipeline: Service, Sendable {
    /// Limits and identity.
    public struct Configuration: Sendable {
        /// `controller`, or the runner's name, recorded on every execution.
        public var location: String
        /// Whether `exec` actions may run here.
        public var allowsExec: Bool
        /// Largest event body accepted.
        public var maxEventBytes: Int
        /// Most events queued before intake answers 429.
        public var maxQueuedEvents: Int
        /// Most deliveries pending in the outbox before intake answers 429.
        public var maxPendingDeliveries: Int
        /// Attempts in flight per action.
        public var actionConcurrency: Int
        /// The most lines of a `file` action one write and one fsync cover: each of its two workers takes up to this
        /// many deliveries at once.
        public var fileConcurrency: Int
        /// Deliveries held in memory per action; more wait in the outbox.
        public var actionBacklog: Int
        /// How long execution records are kept, and how many at most.
        public var executionRetention: Duration
        public var executionLimit: Int
        /// The least time between the starts of two of the writer's transactions. SQLite writes each page a
        /// transaction touches, so at a moderate rate, with a commit for every event or two, each event cost about
        /// 10 KB of log and the disk stayed busy enough to stall the pipeline (p99 14 ms at 5,000 events/s; 3 ms
        /// with a millisecond here). An event after a quiet spell is still written at once.
        public var commitSpacing: Duration

        public init(
            location: String, allowsExec: Bool = false, maxEventBytes: Int = 1 << 20, maxQueuedEvents: Int = 10_000,
            maxPendingDeliveries: Int = 100_000, actionConcurrency: Int = 16, fileConcurrency: Int = 256,
            actionBacklog: Int = 1_000, executionRetention: Duration = .seconds(24 * 3600),
            executionLimit: Int = 100_000, commitSpacing: Duration = .milliseconds(1)
        ) {
            self.location = location
            self.allowsExec = allowsExec
            self.maxEventBytes = maxEventBytes
            self.maxQueuedEvents = maxQueuedEvents
            self.maxPendingDeliveries = maxPendingDeliveries
            self.actionConcurrency = max(1, actionConcurrency)
            self.fileConcurrency = max(1, fileConcurrency)
            self.actionBacklog = max(1, actionBacklog)
            self.executionRetention = executionRetention
            self.executionLimit = executionLimit
            self.commitSpacing = commitSpacing
        }
    }

    /// Counters of one route or action, for status and `describe`.
    public struct Counters: Sendable, Equatable {
        public var matched: Int64 = 0
        public var delivered: Int64 = 0
        public var failed: Int64 = 0
        public var lastError: String?
        /// Deliveries given up in a row, since the last success.
        public var failingInARow: Int64 = 0

        public init() {}
    }

    /// One action's deliveries in memory: a bounded queue that up to `actionConcurrency` workers drain.
    struct Lane {
        var queue = CircularBuffer<Delivery>()
        /// Attempts started and not yet recorded.
        var inFlight = 0
        /// Worker tasks draining `queue`, at most the action's concurrency.
        var workers = 0
        /// Rows in `queue`, in flight or waiting for a retry.
        var held: Set<Int64> = []
        /// Whether ready rows may be in the outbox and not in memory.
        private(set) var hasSpilled = false
        /// How many times rows were left in the outbox: a refill that read the outbox before the latest of them
        /// cannot have seen its rows, and must leave `hasSpilled` set.
        private(set) var spills = 0
        /// Failed deliveries waiting for their retry time.
        var waiting: [Delivery] = []

        /// Notes that ready rows of this action are in the outbox and not in memory.
        mutating func markSpilled() {
            hasSpilled = true
            spills += 1
        }

        /// After a refill that read the outbox when `spills` was `spillsBefore` and loaded `count` rows, of at most
        /// `limit`: rows are left when it hit its limit or when more spilled while it read.
        mutating func refilled(count: Int, limit: Int, spillsBefore: Int) {
            hasSpilled = count >= limit || spills != spillsBefore
        }

        /// Queues `delivery` unless it is already held; past `backlog` it stays in the outbox for a later refill.
        mutating func add(_ delivery: Delivery, backlog: Int) {
            if queue.count >= backlog {
                markSpilled()
            } else if held.insert(delivery.rowID).inserted {
                queue.append(delivery)
            }
        }
    }

    struct State {
        var table = RouteTable.empty
        var queuedEvents = 0
        var pendingDeliveries = 0
        var parsed: [String: JSONValue] = [:]
        var dedup: [String: DedupWindow] = [:]
        var aggregates: [String: AggregateBuffer] = [:]
        var heldAtStart: [String: [AggregateBuffer.Item]] = [:]
        var lanes: [String: Lane] = [:]
        var routeCounters: [String: Counters] = [:]
        /// Deliveries not yet finished, per route.
        var pendingByRoute: [String: Int] = [:]
        var actionCounters: [String: Counters] = [:]
        var isLoaded = false
        /// Whether a table was installed: events wait in the queue until then, never matched against nothing.
        var hasTable = false
    }

    public let configuration: Configuration
    public let store: EventStore
    public let metrics: EventMetrics
    let transports: DeliveryTransports
    let logger: Logger
    let now: @Sendable () -> Int64
    private let state = Mutex(State())
    /// Whether intake refuses events (the queue or the outbox is full), kept beside `state` so that intake reads it
    /// without the lock that intake, workers and the writer contend for under load.
    private let isFull = Atomic<Bool>(false)
    private let routerWake = WakeSignal()
    /// Routing reads and replaces dedup and aggregate state, from the writer and from the router: one at a time.
    private let routing = Mutex(())
    private let dispatcherWake = WakeSignal()
    /// Hand-offs are waiting to go upstream.
    private let upstreamWake = WakeSignal()
    /// Execution records are waiting to be reported upstream.
    private let reportWake = WakeSignal()
    /// Events taken in and attempts finished, written together: one transaction per round of the writer.
    private let writer: GroupCommit<WriterItem>
    private let upstream = Mutex<Upstream?>(nil)
    private let changes = Mutex<ChangeHandler?>(nil)

    /// What ``onCountersChanged(_:)`` set. A struct, not a bare closure, in the mutex: a closure kept as a generic
    /// value is reabstracted on every `inout` access, so each `withLock { $0 }` would wrap it in two more thunks,
    /// and after a million counter changes one call ran through two million of them.
    private struct ChangeHandler: Sendable {
        var call: @Sendable () -> Void
    }

    /// Opens the pipeline over `store`; nothing is delivered until ``run()`` and a table from ``update(_:)``.
    public init(
        configuration: Configuration, store: EventStore, httpClient: HTTPClient, metrics: EventMetrics,
        logger: Logger, now: (@Sendable () -> Int64)? = nil
    ) {
        self.configuration = configuration
        self.writer = GroupCommit(spacing: configuration.commitSpacing)
        self.store = store
        self.metrics = metrics
        self.logger = logger
        // Dedup windows, aggregate timeouts and retries are decided on elapsed time: by default on a clock that a
        // step of the system clock does not move (see `AnchoredWallClock`).
        let clock = AnchoredWallClock()
        self.now = now ?? { clock.milliseconds() }
        self.transports = DeliveryTransports(
            httpClient: httpClient, allowsExec: configuration.allowsExec, location: configuration.location)
    }

    /// The HTTP client deliveries share: no redirects, no retries of its own (the retry policy decides), a
    /// bounded connect time. Kept for the life of the process.
    public static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        configuration.redirectConfiguration = .disallow
        // Nothing collects traces; the default no-op tracer still parsed each request's URL again for the span's
        // attributes (5 % of an agent's CPU delivering to an HTTP action).
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    // MARK: Configuration

    /// Swaps in the route table of a new configuration revision.
    public func update(_ table: RouteTable) {
        state.withLock { state in
            state.table = table
            state.hasTable = true
            for route in table.routes {
                guard let aggregate = route.aggregate else {
                    state.aggregates[route.name] = nil
                    continue
                }
                let held = state.aggregates[route.name]?.items ?? state.heldAtStart.removeValue(forKey: route.name) ?? []
                state.aggregates[route.name] = AggregateBuffer(
                    count: aggregate.count, timeout: aggregate.timeout, items: held)
            }
        }
        for problem in table.problems {
            logger.warning("left out of the route table", metadata: ["steady.problem": "\(problem)"])
        }
        routerWake.signal()
        dispatcherWake.signal()
    }

    /// Where a runner sends what it owes the controller: hand-offs and execution records, each batch durable on the
    /// controller once the call returns. Nil on the controller itself.
    public struct Upstream: Sendable {
        public var sendHandOffs: @Sendable ([EventHandOff]) async throws -> Void
        public var sendExecutions: @Sendable ([ExecutionRecord]) async throws -> Void

        public init(
            sendHandOffs: @escaping @Sendable ([EventHandOff]) async throws -> Void,
            sendExecutions: @escaping @Sendable ([ExecutionRecord]) async throws -> Void
        ) {
            self.sendHandOffs = sendHandOffs
            self.sendExecutions = sendExecutions
        }
    }

    /// Sets the upstream of a runner's pipeline; its queue of hand-offs and records drains from then on.
    public func setUpstream(_ upstream: Upstream) {
        self.upstream.withLock { $0 = upstream }
        upstreamWake.signal()
        reportWake.signal()
    }

    /// Sets what is called whenever counters change (for status writers).
    public func onCountersChanged(_ body: @escaping @Sendable () -> Void) {
        changes.withLock { $0 = ChangeHandler(call: body) }
    }

    /// The counters of every route and action seen so far.
    public var counters: (routes: [String: Counters], actions: [String: Counters]) {
        state.withLock { ($0.routeCounters, $0.actionCounters) }
    }

    /// Deliveries not yet delivered nor given up, per route, since this process started.
    public var pendingByRoute: [String: Int] {
        state.withLock { $0.pendingByRoute.filter { $0.value > 0 } }
    }

    /// Deliveries not yet delivered nor given up, per action, as held in memory.
    public var pendingByAction: [String: Int] {
        state.withLock { $0.lanes.mapValues { $0.queue.count + $0.inFlight + $0.waiting.count } }
    }

    /// Stores execution records a runner reported, in the writer's next round, and counts them; returns once they
    /// are durable. Written on the writer's thread like everything else: a report of 1,000 records held the
    /// connection 10–30 ms, which on the caller's thread blocked one of Swift's few cooperative threads meanwhile.
    public func acceptReport(_ executions: [ExecutionRecord]) async throws {
        guard !executions.isEmpty else { return }
        try await writer.submit(.report(executions), on: Self.writerThread) { [self] batch in try write(batch) }
        recordReported(executions)
    }

    /// The newest execution records, newest first, optionally of one route or action; read on a thread of the
    /// store's own, since a read by route can go through the whole table.
    public func executions(route: String? = nil, action: String? = nil, limit: Int = 500) async throws
        -> [ExecutionRecord]
    {
        try await Self.readerThread.runIfActive { [store] in
            try store.executions(route: route, action: action, limit: limit)
        }
    }

    /// The record of an `Execution` object's name, or nil; read as ``executions(route:action:limit:)`` are.
    public func execution(named name: String) async throws -> ExecutionRecord? {
        try await Self.readerThread.runIfActive { [store] in try store.execution(named: name) }
    }

    /// Counts executions a runner reported, in the route and action counters.
    func recordReported(_ executions: [ExecutionRecord]) {
        state.withLock { state in
            for record in executions {
                switch record.result {
                case .succeeded:
                    state.routeCounters[record.route, default: Counters()].delivered += 1
                    state.actionCounters[record.action, default: Counters()].delivered += 1
                    state.actionCounters[record.action]?.failingInARow = 0
                case .failed:
                    state.routeCounters[record.route, default: Counters()].failed += 1
                    state.actionCounters[record.action, default: Counters()].failed += 1
                    state.actionCounters[record.action]?.failingInARow += 1
                    state.actionCounters[record.action]?.lastError = record.error
                case .retrying:
                    state.actionCounters[record.action, default: Counters()].lastError = record.error
                }
            }
        }
        if !executions.isEmpty { changes.withLock { $0 }?.call() }
    }

    // MARK: Intake

    /// Takes in one event: parsed, given an id and written to the queue before this returns.
    public func accept(_ body: [UInt8]) async throws(IntakeError) -> String {
        let item = try intakeItem(for: body)
        try await enqueue(item)
        return item.event.id
    }

    /// As ``accept(_:)``, for a caller that cannot wait (an event loop): `completion` gets the event's id once it is
    /// durable, or why it was refused. It is called once, on the writer's thread or on the caller's.
    public func accept(_ body: [UInt8], completion: @escaping @Sendable (Result<String, IntakeError>) -> Void) {
        let item: IntakeItem
        do {
            item = try intakeItem(for: body)
        } catch {
            completion(.failure(error))
            return
        }
        enqueue(item) { result in completion(result.map { item.event.id }) }
    }

    /// Takes in an event a runner handed up, keeping its id and the actions still due.
    public func accept(_ handOff: EventHandOff) async throws(IntakeError) {
        let body = Array(handOff.body.utf8)
        let event = EventStore.NewEvent(
            id: handOff.eventID, receivedAt: handOff.receivedAt, body: body, due: handOff.due)
        try await enqueue(IntakeItem(event: event, value: try? JSONValue.parse(Data(body))))
    }

    /// The thread the writer's rounds run on: a commit blocks, and must hold neither an event loop nor one of the
    /// few threads Swift's concurrency runs tasks on.
    private static let writerThread = startedThread()
    /// The thread the API's reads of execution records run on, for the same reason.
    private static let readerThread = startedThread()

    private static func startedThread() -> NIOThreadPool {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }

    /// An event posted here, checked, parsed and given its id.
    private func intakeItem(for body: [UInt8]) throws(IntakeError) -> IntakeItem {
        guard body.count <= configuration.maxEventBytes else {
            metrics.rejected.increment()
            throw IntakeError(.tooLarge, "the event is \(body.count) bytes; the limit is \(configuration.maxEventBytes)")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(Data(body))
        } catch {
            metrics.rejected.increment()
            throw IntakeError(.invalid, "the body is not JSON: \(error)")
        }
        // Time-ordered, so that the outbox's index by event grows at its end (a random id dirtied a random page of
        // it per event, each written to SQLite's log at the next commit).
        let receivedAt = now()
        let id = RandomUUID.timeOrdered(milliseconds: receivedAt)
        return IntakeItem(event: EventStore.NewEvent(id: id, receivedAt: receivedAt, body: body), value: value)
    }

    /// Refuses an event while the queue or the outbox is full: the caller retries, nothing is buffered without bound.
    private func checkRoom() throws(IntakeError) {
        if isFull.load(ordering: .relaxed) {
            metrics.rejected.increment()
            throw IntakeError(.queueFull, "the event queue is full; retry later")
        }
    }

    /// Notes whether intake refuses events, after the queue or the outbox changed; the caller holds `state`.
    private func noteRoom(_ state: State) {
        isFull.store(
            state.queuedEvents >= configuration.maxQueuedEvents
                || state.pendingDeliveries >= configuration.maxPendingDeliveries, ordering: .relaxed)
    }

    private func enqueue(_ item: IntakeItem) async throws(IntakeError) {
        try await withCheckedContinuation { continuation in
            enqueue(item) { continuation.resume(returning: $0) }
        }.get()
    }

    /// Hands `item` to the writer unless there is no room; `completion` is called once it is durable or
    /// refused.
    private func enqueue(_ item: IntakeItem, completion: @escaping @Sendable (Result<Void, IntakeError>) -> Void) {
        do {
            try checkRoom()
        } catch {
            completion(.failure(error))
            return
        }
        submit(.event(item)) { result in
            completion(result.mapError { IntakeError(.unavailable, "the event queue cannot be written: \($0)") })
        }
    }

    /// An event waiting for the writer, with its parsed body.
    struct IntakeItem: Sendable {
        var event: EventStore.NewEvent
        var value: JSONValue?
    }

    /// What the writer commits.
    enum WriterItem: Sendable {
        case event(IntakeItem)
        case attempt(FinishedAttempt)
        /// Execution records a runner reported.
        case report([ExecutionRecord])
    }

    /// Hands `item` to the writer; `completion` is called on the writer's thread once it is durable or failed.
    private func submit(_ item: WriterItem, completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        writer.submit(item, on: Self.writerThread, write: { [self] batch in try write(batch) }, completion: completion)
    }

    /// Writes one round of the writer in one transaction: the attempts finished since the last round and the events
    /// taken in. With a route table and nothing older in the queue, the events are routed in that transaction: their
    /// deliveries are what is written, not a queue row that the router would read back and delete in a second
    /// commit. Otherwise they wait in the queue for the router.
    private func write(_ batch: [WriterItem]) throws {
        var events: [IntakeItem] = []
        var finished: [FinishedAttempt] = []
        var reported: [ExecutionRecord] = []
        for item in batch {
            switch item {
            case .event(let event): events.append(event)
            case .attempt(let attempt): finished.append(attempt)
            case .report(let records): reported += records
            }
        }
        let time = now()
        let attempts = finished.map { outcome(of: $0, at: time) }
        try routing.withLock { _ throws in
            var write = EventStore.Write(finished: attempts, reported: reported)
            var plan: RoutingPlan?
            if !events.isEmpty {
                if state.withLock({ $0.isLoaded && $0.hasTable && $0.queuedEvents == 0 }) {
                    let queued = events.map {
                        EventStore.QueuedEvent(
                            sequence: 0, id: $0.event.id, receivedAt: $0.event.receivedAt, body: $0.event.body,
                            due: $0.event.due)
                    }
                    plan = self.plan(queued, values: events.map(\.value), fromQueue: false)
                    write.step = plan?.step
                } else {
                    write.queued = events.map(\.event)
                }
            }
            let written: (completions: [EventStore.Completion], ready: [Delivery])
            do {
                written = try store.write(write, makeDeliveryID: Self.deliveryID)
            } catch {
                if !attempts.isEmpty { notRecorded(attempts, error: error) }
                throw error
            }
            if !attempts.isEmpty { recorded(attempts, written.completions, at: time) }
            if let plan {
                apply(plan, ready: written.ready)
            } else if !events.isEmpty {
                state.withLock { state in
                    state.queuedEvents += events.count
                    noteRoom(state)
                    for item in events { if let value = item.value { state.parsed[item.event.id] = value } }
                }
                routerWake.signal()
            }
        }
        if !events.isEmpty { metrics.received.increment(by: Int64(events.count)) }
    }

    // MARK: Running

    public func run() async throws {
        try load()
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.routeEvents() }
                group.addTask { await self.pruneExecutions() }
                group.addTask { await self.handOffUpstream() }
                group.addTask { await self.reportUpstream() }
                await self.dispatch(in: &group)
            }
        }
    }

    /// Reads what survived the last run: queue depth, pending deliveries, dedup keys, held aggregates.
    func load() throws {
        let depths = try store.depths()
        let windows = try store.dedupWindows(now: now())
        let held = try store.heldItems()
        let actions = try store.actionsWithReadyDeliveries()
        state.withLock { state in
            state.queuedEvents = depths.events
            state.pendingDeliveries = depths.outbox
            noteRoom(state)
            state.dedup = windows
            for (route, items) in held {
                if state.aggregates[route] != nil {
                    for item in items { _ = state.aggregates[route]?.add(item) }
                } else {
                    state.heldAtStart[route] = items
                }
            }
            for action in actions { state.lanes[action, default: Lane()].markSpilled() }
            state.isLoaded = true
        }
        metrics.queueDepth.set(Double(depths.events))
        metrics.outboxDepth.set(Double(depths.outbox))
    }

    // MARK: Routing

    private func routeEvents() async {
        while !Task.isCancelled {
            routing.withLock { _ in releaseDueAggregates() }
            let batch: [EventStore.QueuedEvent]
            do {
                batch = try store.queuedEvents(limit: 256)
            } catch {
                logger.error("cannot read the event queue", metadata: ["steady.error": "\(error)"])
                await routerWake.wait(timeout: .seconds(1))
                continue
            }
            if batch.isEmpty || !state.withLock({ $0.hasTable }) {
                let deadline = state.withLock { $0.aggregates.values.compactMap(\.deadline).min() }
                if let deadline {
                    await routerWake.wait(timeout: .milliseconds(max(deadline - now(), 1)))
                } else {
                    await routerWake.wait()
                }
                continue
            }
            do {
                try route(batch)
            } catch {
                // The events stay in the queue; routed again once the outbox can be written.
                logger.error("cannot write the outbox", metadata: ["steady.error": "\(error)"])
                await routerWake.wait(timeout: .seconds(1))
            }
        }
    }

    /// What routing a batch of events becomes: a step to write, and what changes in memory once it is durable.
    struct RoutingPlan {
        var step = EventStore.RoutingStep()
        var aggregates: [String: AggregateBuffer]
        /// Events taken off the queue, whose parsed bodies are no longer needed.
        var consumedIDs: [String] = []
        /// The routes that matched, once per match.
        var matches: [String] = []
    }

    /// Evaluates a batch of queued events against the table and commits what they become, in one transaction.
    func route(_ batch: [EventStore.QueuedEvent]) throws {
        try routing.withLock { _ in
            let parsed = state.withLock { state in batch.map { state.parsed[$0.id] } }
            try commit(plan(batch, values: parsed, fromQueue: true))
        }
    }

    /// Evaluates events (with their bodies parsed, where they were) against the table: the deliveries they become,
    /// and their removal from the queue when they came from it. The caller holds `routing` until the plan is
    /// written and applied.
    private func plan(_ batch: [EventStore.QueuedEvent], values parsed: [JSONValue?], fromQueue: Bool) -> RoutingPlan {
        let (table, dedup, aggregatesBefore) = state.withLock { state in
            (state.table, state.dedup, state.aggregates)
        }
        var aggregates = aggregatesBefore
        var step = EventStore.RoutingStep()
        var matches: [String] = []
        let time = now()
        for (event, value) in zip(batch, parsed) {
            if fromQueue { step.consumed.append(event.sequence) }
            guard let input = value ?? (try? JSONValue.parse(Data(event.body))) else { continue }
            if let due = event.due {
                // Handed up by a runner: its routes matched there; run the actions still due, in order.
                for item in due {
                    let route = table.routes.first { $0.name == item.route }
                    let message = (route?.template ?? .rawJSON).render(input, raw: event.body)
                    // Only actions that run here: never another runner's, whatever a runner sent.
                    let actions = item.actions.filter { table.localActions.contains($0) }
                    step.groups.append(
                        (
                            actions.map {
                                EventStore.NewDelivery(
                                    eventID: event.id, route: item.route, action: $0,
                                    message: table.message(message, for: $0, input: input),
                                    receivedAt: event.receivedAt)
                            }, route?.serializeActions ?? false
                        ))
                }
                continue
            }
            func handOff(_ due: [EventHandOff.Due]) -> EventHandOff {
                EventHandOff(
                    eventID: event.id, receivedAt: event.receivedAt, body: String(decoding: event.body, as: UTF8.self),
                    due: due)
            }
            var dueNow: [EventHandOff.Due] = []
            for route in table.matchingRoutes(input) {
                matches.append(route.name)
                let key = route.dedupKey(for: input)
                if let key, dedup[route.name]?.isDuplicate(key, now: time) == true { continue }
                let message = route.template.render(input, raw: event.body)
                if var buffer = aggregates[route.name] {
                    let item = AggregateBuffer.Item(eventID: event.id, message: message.body, heldAt: time)
                    switch buffer.add(item) {
                    case .hold:
                        step.held.append((route.name, item))
                    case .release(let items):
                        step.held.removeAll { $0.route == route.name }
                        step.releasedRoutes.append(route.name)
                        step.groups.append(
                            Self.group(
                                route, table: table, eventID: items[0].eventID,
                                message: RenderedMessage(title: message.title, body: AggregateBuffer.combine(items)),
                                receivedAt: event.receivedAt, dedupKey: nil, expiry: nil, thenHandOff: nil))
                    }
                    aggregates[route.name] = buffer
                    continue
                }
                // With serializeActions the controller's actions start after the runner's: the hand-off leaves
                // once the last local delivery has finished. Otherwise it leaves now, once for every route.
                var later: EventHandOff?
                if !route.upstreamActions.isEmpty {
                    let due = EventHandOff.Due(route: route.name, actions: route.upstreamActions)
                    if route.serializeActions && !route.localActions.isEmpty {
                        later = handOff([due])
                    } else {
                        dueNow.append(due)
                    }
                }
                step.groups.append(
                    Self.group(
                        route, table: table, eventID: event.id, message: message, input: input,
                        receivedAt: event.receivedAt, dedupKey: key,
                        expiry: route.dedupWindow.map { event.receivedAt + $0 }, thenHandOff: later))
            }
            if !dueNow.isEmpty { step.handOffs.append(handOff(dueNow)) }
        }
        return RoutingPlan(
            step: step, aggregates: aggregates, consumedIDs: fromQueue ? batch.map(\.id) : [], matches: matches)
    }

    /// The deliveries of one route match, one per local action, each with the action's own rendering if it has one.
    /// An aggregate (no `input`) is rendered over the combined messages.
    private static func group(
        _ route: RouteTable.CompiledRoute, table: RouteTable, eventID: String, message: RenderedMessage,
        input: JSONValue? = nil, receivedAt: Int64, dedupKey: String?, expiry: Int64?, thenHandOff: EventHandOff?
    ) -> (deliveries: [EventStore.NewDelivery], serialized: Bool) {
        let actions = route.localActions
        return (
            actions.enumerated().map { index, action in
                let rendered = table.actionTemplates[action] == nil
                    ? message
                    : table.message(
                        message, for: action, input: input ?? (try? JSONValue.parse(Data(message.body))) ?? .null)
                return EventStore.NewDelivery(
                    eventID: eventID, route: route.name, action: action, message: rendered, receivedAt: receivedAt,
                    dedupKey: dedupKey, dedupExpiry: expiry, thenHandOff: index == actions.count - 1 ? thenHandOff : nil)
            }, route.serializeActions
        )
    }

    private func releaseDueAggregates() {
        let time = now()
        var step = EventStore.RoutingStep()
        let (table, before) = state.withLock { ($0.table, $0.aggregates) }
        var aggregates = before
        for route in table.routes {
            guard var buffer = aggregates[route.name], case .release(let items) = buffer.expire(now: time),
                !items.isEmpty
            else { continue }
            aggregates[route.name] = buffer
            step.releasedRoutes.append(route.name)
            step.groups.append(
                Self.group(
                    route, table: table, eventID: items[0].eventID,
                    message: RenderedMessage(title: nil, body: AggregateBuffer.combine(items)),
                    receivedAt: items[0].heldAt, dedupKey: nil, expiry: nil, thenHandOff: nil))
        }
        guard !step.releasedRoutes.isEmpty else { return }
        do {
            try commit(RoutingPlan(step: step, aggregates: aggregates))
        } catch {
            logger.error("cannot write the outbox", metadata: ["steady.error": "\(error)"])
        }
    }

    /// Writes a routing plan and, once it is durable, applies it in memory; nothing changes when it cannot be written.
    private func commit(_ plan: RoutingPlan) throws {
        apply(plan, ready: try store.commit(plan.step, makeDeliveryID: Self.deliveryID))
    }

    /// Applies a written routing plan in memory; `ready` are its deliveries that can start now.
    private func apply(_ plan: RoutingPlan, ready: [Delivery]) {
        let step = plan.step
        let added = step.groups.reduce(0) { $0 + $1.deliveries.count }
        var matchCounts: [String: Int64] = [:]
        for route in plan.matches { matchCounts[route, default: 0] += 1 }
        let depths = state.withLock { state in
            state.aggregates = plan.aggregates
            state.queuedEvents -= step.consumed.count
            state.pendingDeliveries += added
            noteRoom(state)
            for id in plan.consumedIDs { state.parsed[id] = nil }
            for (route, count) in matchCounts { state.routeCounters[route, default: Counters()].matched += count }
            for group in step.groups {
                for delivery in group.deliveries { state.pendingByRoute[delivery.route, default: 0] += 1 }
            }
            for delivery in ready { Self.enqueue(delivery, into: &state, backlog: configuration.actionBacklog) }
            return (state.queuedEvents, state.pendingDeliveries)
        }
        for (route, count) in matchCounts { metrics.matched(route: route, count: count) }
        metrics.queueDepth.set(Double(depths.0))
        metrics.outboxDepth.set(Double(depths.1))
        if !ready.isEmpty { dispatcherWake.signal() }
        // The router releases held aggregates at their timeout: it learns of a new deadline here.
        if !step.held.isEmpty { routerWake.signal() }
        if !step.handOffs.isEmpty { upstreamWake.signal() }
        if !plan.matches.isEmpty { changes.withLock { $0 }?.call() }
    }

    private static func enqueue(_ delivery: Delivery, into state: inout State, backlog: Int) {
        state.lanes[delivery.action, default: Lane()].add(delivery, backlog: backlog)
    }

    // MARK: Delivering

    /// Starts workers for lanes with queued deliveries (a worker drains its lane until it is empty, so tasks are
    /// started per burst, not per delivery), refills lanes from the outbox, and moves retries in when they are due.
    private func dispatch(in group: inout DiscardingTaskGroup) async {
        while !Task.isCancelled {
            refillSpilledLanes()
            let (workers, nextDue) = startWorkers()
            for action in workers {
                group.addTask { await self.work(action) }
            }
            if let nextDue {
                await dispatcherWake.wait(timeout: .milliseconds(max(nextDue - now(), 1)))
            } else {
                await dispatcherWake.wait()
            }
        }
    }

    private func refillSpilledLanes() {
        let spilled = state.withLock { state in
            state.lanes.compactMap { action, lane in
                lane.hasSpilled && lane.queue.isEmpty ? (action, lane.held, lane.spills) : nil
            }
        }
        for (action, held, spillsBefore) in spilled {
            do {
                let loaded = try store.readyDeliveries(
                    action: action, limit: configuration.actionBacklog, excluding: held)
                let time = now()
                state.withLock { state in
                    state.lanes[action]?.refilled(
                        count: loaded.count, limit: configuration.actionBacklog, spillsBefore: spillsBefore)
                    for delivery in loaded {
                        if delivery.dueAt > time {
                            state.lanes[action]?.waiting.append(delivery)
                            state.lanes[action]?.held.insert(delivery.rowID)
                        } else {
                            Self.enqueue(delivery, into: &state, backlog: configuration.actionBacklog + loaded.count)
                        }
                    }
                }
            } catch {
                logger.error("cannot read the outbox", metadata: ["steady.error": "\(error)"])
            }
        }
    }

    /// The workers to start now, one action name per worker, and when the next waiting retry is due.
    private func startWorkers() -> ([String], Int64?) {
        let time = now()
        return state.withLock { state in
            guard state.isLoaded else { return ([], nil) }
            var starts: [String] = []
            var nextDue: Int64?
            let local = state.table.localActions
            for index in state.lanes.indices {
                let action = state.lanes.keys[index]
                if state.lanes.values[index].waiting.contains(where: { $0.dueAt <= time }) {
                    let due = state.lanes.values[index].waiting.filter { $0.dueAt <= time }
                    state.lanes.values[index].waiting.removeAll { $0.dueAt <= time }
                    for delivery in due.reversed() { state.lanes.values[index].queue.prepend(delivery) }
                }
                if let earliest = state.lanes.values[index].waiting.lazy.map(\.dueAt).min() {
                    nextDue = min(nextDue ?? earliest, earliest)
                }
                // Only actions the table knows run; the others wait in the outbox for their configuration.
                guard local.contains(action) else { continue }
                let lane = state.lanes.values[index]
                // A file lane's two workers each append a batch of lines with one write and one sync: while one
                // syncs, the other gathers the next batch.
                let concurrency =
                    state.table.actions[action]?.type == .file ? Self.fileWorkers : configuration.actionConcurrency
                let added = min(concurrency - lane.workers, lane.queue.count)
                guard added > 0 else { continue }
                state.lanes.values[index].workers += added
                starts += repeatElement(action, count: added)
            }
            return (starts, nextDue)
        }
    }

    /// One of a lane's workers: attempts its deliveries one after another, handing each finished attempt to the
    /// writer, and returns once the lane is empty. The writer records everything that finished since its last round
    /// in its next transaction, with the events taken in meanwhile: under load one commit covers hundreds of
    /// attempts. A delivery stays held (never queued twice) until it is recorded; one made and not recorded when the
    /// process dies is made again: at least once.
    private func work(_ action: String) async {
        let batch = state.withLock { $0.table.actions[action]?.type == .file } ? configuration.fileConcurrency : 1
        while let (deliveries, table) = take(from: action, limit: batch) {
            for attempt in await attempt(deliveries, table: table) { submit(.attempt(attempt)) { _ in } }
        }
    }

    /// Workers of a `file` lane.
    static let fileWorkers = 2

    /// The next deliveries of `action`'s lane, at most `limit`, and the table they run with; nil (and one worker
    /// fewer) when the lane is empty or the action no longer runs here.
    private func take(from action: String, limit: Int) -> ([Delivery], table: RouteTable)? {
        let (taken, refill) = state.withLock { state -> (([Delivery], table: RouteTable)?, Bool) in
            guard !Task.isCancelled, state.table.localActions.contains(action),
                let count = state.lanes[action]?.queue.count, count > 0
            else {
                state.lanes[action]?.workers -= 1
                return (nil, state.lanes[action]?.hasSpilled ?? false)
            }
            let taken = min(count, limit)
            var deliveries: [Delivery] = []
            deliveries.reserveCapacity(taken)
            for _ in 0..<taken {
                if let delivery = state.lanes[action]?.queue.popFirst() { deliveries.append(delivery) }
            }
            state.lanes[action]?.inFlight += deliveries.count
            return ((deliveries, state.table), false)
        }
        if refill { dispatcherWake.signal() }
        return taken
    }

    /// A delivery attempt made, not yet recorded.
    struct FinishedAttempt: Sendable {
        var delivery: Delivery
        var failure: DeliveryFailure?
        var policy: RetryPolicy
        var duration: Duration
    }

    /// Makes one attempt at each of `deliveries` (of one action) with the action and secrets of `table`: the lines of
    /// a `file` action with one write and one sync, the others one after another.
    func attempt(_ deliveries: [Delivery], table: RouteTable) async -> [FinishedAttempt] {
        guard let first = deliveries.first, let action = table.actions[first.action], action.type == .file else {
            var finished: [FinishedAttempt] = []
            for delivery in deliveries { finished.append(await attempt(delivery, table: table)) }
            return finished
        }
        let started = ContinuousClock.now
        var failure: DeliveryFailure?
        do {
            try await transports.appendLines(of: deliveries, action: action)
        } catch {
            failure = error
        }
        let duration = ContinuousClock.now - started
        let policy = RetryPolicy(action: action)
        return deliveries.map { FinishedAttempt(delivery: $0, failure: failure, policy: policy, duration: duration) }
    }

    /// Makes one attempt at `delivery` with the action and secrets of `table`.
    func attempt(_ delivery: Delivery, table: RouteTable) async -> FinishedAttempt {
        guard let action = table.actions[delivery.action] else {
            return FinishedAttempt(
                delivery: delivery, failure: DeliveryFailure(permanent: "action \(delivery.action) no longer exists"),
                policy: .standard, duration: .zero)
        }
        let policy = RetryPolicy(action: action)
        let started = ContinuousClock.now
        var failure: DeliveryFailure?
        do {
            try await transports.deliver(delivery, action: action, table: table, timeout: policy.timeout)
        } catch {
            failure = error
        }
        return FinishedAttempt(
            delivery: delivery, failure: failure, policy: policy, duration: ContinuousClock.now - started)
    }

    /// The outcome and execution record of a finished attempt.
    private func outcome(of finished: FinishedAttempt, at time: Int64) -> EventStore.FinishedAttempt {
        let delivery = finished.delivery
        let attempt = delivery.attempts + 1
        let outcome: EventStore.Outcome
        let result: ExecutionRecord.Result
        if let failure = finished.failure {
            switch finished.policy.decision(afterFailedAttempt: attempt, isPermanent: failure.isPermanent) {
            case .retry(let delay):
                outcome = .retry(dueAt: time + delay.milliseconds)
                result = .retrying
            case .giveUp:
                outcome = .failed
                result = .failed
            }
        } else {
            outcome = .delivered
            result = .succeeded
        }
        let record = ExecutionRecord(
            time: time, eventID: delivery.eventID, route: delivery.route, action: delivery.action,
            location: configuration.location, attempt: attempt, result: result,
            durationMilliseconds: finished.duration.milliseconds, error: finished.failure?.message,
            deliveryID: delivery.deliveryID)
        return EventStore.FinishedAttempt(delivery: delivery, outcome: outcome, execution: record)
    }

    /// After finished attempts could not be recorded: their rows are still in the outbox as they were, and are read
    /// back and attempted again.
    private func notRecorded(_ attempts: [EventStore.FinishedAttempt], error: any Error) {
        logger.error("cannot record deliveries", metadata: ["steady.error": "\(error)"])
        state.withLock { state in
            for attempt in attempts {
                state.lanes[attempt.delivery.action]?.inFlight -= 1
                state.lanes[attempt.delivery.action]?.held.remove(attempt.delivery.rowID)
                state.lanes[attempt.delivery.action]?.markSpilled()
            }
        }
        dispatcherWake.signal()
    }

    /// Applies recorded attempts in memory: counters, retries, dedup keys, and the next delivery of a serialized
    /// route.
    private func recorded(
        _ attempts: [EventStore.FinishedAttempt], _ completions: [EventStore.Completion], at time: Int64
    ) {
        var finishedCount = 0
        let depth = state.withLock { state in
            for (attempt, completion) in zip(attempts, completions) {
                if Self.apply(attempt, completion, to: &state, now: time, backlog: configuration.actionBacklog) {
                    finishedCount += 1
                }
            }
            noteRoom(state)
            return state.pendingDeliveries
        }
        var results: [ResultKey: Int64] = [:]
        for attempt in attempts {
            results[ResultKey(action: attempt.delivery.action, result: attempt.execution.result), default: 0] += 1
            if attempt.execution.result != .succeeded {
                logger.notice(
                    "delivery failed",
                    metadata: [
                        "steady.route": "\(attempt.delivery.route)", "steady.action": "\(attempt.delivery.action)",
                        "steady.attempt": "\(attempt.execution.attempt)",
                        "steady.error": "\(attempt.execution.error ?? "")",
                    ])
            }
        }
        for (key, count) in results { metrics.finished(action: key.action, result: key.result, count: count) }
        metrics.outboxDepth.set(Double(depth))
        dispatcherWake.signal()
        // A finished attempt may have released a hand-off (the last runner action of a serialized route).
        upstreamWake.signal()
        reportWake.signal()
        if finishedCount > 0 { changes.withLock { $0 }?.call() }
    }

    /// An action and a result, to count finished attempts by.
    private struct ResultKey: Hashable {
        var action: String
        var result: ExecutionRecord.Result
    }

    /// Applies one recorded attempt to the lanes and counters; true when the delivery is over.
    private static func apply(
        _ attempt: EventStore.FinishedAttempt, _ completion: EventStore.Completion, to state: inout State,
        now time: Int64, backlog: Int
    ) -> Bool {
        let delivery = attempt.delivery
        let error = attempt.execution.error
        state.lanes[delivery.action, default: Lane()].inFlight -= 1
        switch attempt.outcome {
        case .retry(let dueAt):
            var retry = delivery
            retry.attempts = attempt.execution.attempt
            retry.dueAt = dueAt
            state.lanes[delivery.action, default: Lane()].waiting.append(retry)
            state.actionCounters[delivery.action, default: Counters()].lastError = error
        case .delivered:
            state.routeCounters[delivery.route, default: Counters()].delivered += 1
            state.actionCounters[delivery.action, default: Counters()].delivered += 1
            state.actionCounters[delivery.action, default: Counters()].failingInARow = 0
        case .failed:
            state.routeCounters[delivery.route, default: Counters()].failed += 1
            state.actionCounters[delivery.action, default: Counters()].failed += 1
            state.actionCounters[delivery.action, default: Counters()].failingInARow += 1
            state.actionCounters[delivery.action, default: Counters()].lastError = error
        }
        if attempt.outcome.isFinal {
            state.lanes[delivery.action, default: Lane()].held.remove(delivery.rowID)
            state.pendingDeliveries -= 1
            state.pendingByRoute[delivery.route, default: 0] -= 1
        }
        if let recorded = completion.recordedDedupKey {
            state.dedup[recorded.route, default: DedupWindow()].record(recorded.key, expiresAt: recorded.expiresAt)
            if state.dedup[recorded.route, default: DedupWindow()].count > 10_000 {
                state.dedup[recorded.route, default: DedupWindow()].expire(now: time)
            }
        }
        if let next = completion.next { enqueue(next, into: &state, backlog: backlog) }
        return attempt.outcome.isFinal
    }

    /// The same id for the same (event, route, action) wherever and however often it is routed, so that a receiver
    /// can drop a repeat (after a runner re-sends a hand-off the controller already took, say).
    static func deliveryID(eventID: String, route: String, action: String) -> String {
        let digest = SHA256.hash(data: Data("\(eventID)\u{0}\(route)\u{0}\(action)".utf8))
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(32)
        for byte in digest.prefix(16) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    // MARK: Upstream

    /// Sends hand-offs to the controller as soon as they are written, until they are all taken, then waits for more;
    /// a controller that cannot be reached is tried again with backoff, and nothing is dropped meanwhile.
    private func handOffUpstream() async {
        await drainUpstream(wake: upstreamWake) { upstream in
            let handOffs = try self.store.pendingHandOffs(limit: 64)
            guard let last = handOffs.last else { return false }
            try await upstream.sendHandOffs(handOffs.map(\.handOff))
            try self.store.removeHandOffs(through: last.row)
            return true
        }
    }

    /// Sends execution records to the controller at most every ``reportSpacing``, so that a busy runner reports
    /// them by the thousand rather than a few per request; as ``handOffUpstream()`` otherwise.
    private func reportUpstream() async {
        await drainUpstream(wake: reportWake) { upstream in
            let executions = try self.store.unreportedExecutions(limit: Self.reportLimit)
            guard let last = executions.last else { return false }
            try await upstream.sendExecutions(executions)
            try self.store.markReported(through: last.sequence)
            if executions.count < Self.reportLimit { try? await Task.sleep(for: Self.reportSpacing) }
            return true
        }
    }

    /// The least time between two reports of execution records: they are for people and `kubectl get executions`,
    /// and each report was a read, a request to the controller and a write here (4 % of a runner's CPU at 5,000
    /// deliveries/s, sent a few records at a time).
    static let reportSpacing = Duration.milliseconds(200)
    /// The most records in one report.
    static let reportLimit = 1_000

    /// Runs `step` until it finds nothing to send (returns false), then waits for `wake`; retries with backoff while
    /// the controller cannot be reached.
    private func drainUpstream(wake: WakeSignal, step: (Upstream) async throws -> Bool) async {
        var failures = 0
        while !Task.isCancelled {
            guard let upstream = upstream.withLock({ $0 }) else {
                await wake.wait()
                continue
            }
            do {
                let sent = try await step(upstream)
                failures = 0
                if !sent { await wake.wait() }
            } catch {
                failures += 1
                let delay = Backoff.reconnect.jitteredDelay(attempt: failures - 1)
                if failures == 1 || failures % 10 == 0 {
                    logger.warning(
                        "cannot report events to the controller yet; they wait on disk",
                        metadata: ["steady.error": "\(error)", "steady.retryIn": "\(delay)"])
                }
                try? await Task.sleep(for: delay)
            }
        }
    }

    // MARK: Retention

    /// Prunes execution records once a minute.
    private func pruneExecutions() async {
        while !Task.isCancelled {
            do {
                try await pruneExecutionsOnce()
            } catch {
                logger.error("cannot prune execution records", metadata: ["steady.error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(60))
        }
    }

    /// Drops execution records past their retention (age) or beyond the newest `executionLimit`, in steps of
    /// `pruneStep` rows a millisecond apart: one statement over 300,000 rows held intake for 180 ms.
    func pruneExecutionsOnce() async throws {
        let cutoff = now() - configuration.executionRetention.milliseconds
        try store.pruneFailedDeliveries(before: cutoff)
        guard let rows = try store.executionRows() else { return }
        // Rows are numbered in the order they were recorded, so the newest N are the last N numbers.
        let lastDropped = rows.upperBound - Int64(configuration.executionLimit)
        var start = rows.lowerBound
        while start <= rows.upperBound, !Task.isCancelled {
            let end = min(start + Int64(Self.pruneStep), rows.upperBound + 1)
            try store.pruneExecutions(in: start..<end, before: cutoff, throughRow: lastDropped)
            start = end
            // Not a wait for anything: the pause lets the writer take the connection between two steps.
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Rows of execution records looked at in one step of retention.
    static let pruneStep = 1_000
}

extension Duration {
    /// The whole duration in milliseconds.
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// The duration in seconds, as Foundation counts time.
    var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
