/// A follower of RemoteRun output (``RunOutputStore/followEvents(run:runner:)``): each runner's stored output,
/// read from the store one runner at a time as it is iterated, then the live output, until the store ends it.
///
/// Live chunks are registered before the stored output is read, so none is missed; a live chunk the stored read
/// already held (it ends at or before the byte count read with it) is skipped, so none is repeated.
public struct RunOutputFollow: AsyncSequence, Sendable {
    public typealias Element = RunOutputStore.FollowEvent
    public typealias Failure = Never

    let store: RunOutputStore
    let run: String
    /// The runners with stored output when the follower subscribed.
    let storedRunners: [String]
    /// Live events, each with its runner's byte count once appended.
    let live: AsyncStream<(RunOutputStore.FollowEvent, Int64)>

    public func makeAsyncIterator() -> Iterator {
        Iterator(follow: self)
    }

    /// Replays one runner's stored output at a time, then passes the live events on.
    public struct Iterator: AsyncIteratorProtocol {
        private let follow: RunOutputFollow
        private var pendingRunners: [String]
        private var queue: [RunOutputStore.FollowEvent] = []
        private var queueIndex = 0
        /// The byte count of each runner's replayed output.
        private var replayed: [String: Int64] = [:]
        private var live: AsyncStream<(RunOutputStore.FollowEvent, Int64)>.Iterator

        init(follow: RunOutputFollow) {
            self.follow = follow
            pendingRunners = follow.storedRunners.reversed()
            live = follow.live.makeAsyncIterator()
        }

        public mutating func next() async -> RunOutputStore.FollowEvent? {
            while true {
                if queueIndex < queue.count {
                    queueIndex += 1
                    return queue[queueIndex - 1]
                }
                if let runner = pendingRunners.popLast() {
                    let stored = follow.store.outputs(run: follow.run, runner: runner).first
                    replayed[runner] = stored?.totalBytes ?? 0
                    queue = stored?.events ?? []
                    queueIndex = 0
                    continue
                }
                queue = []
                guard let (event, offset) = await live.next() else { return nil }
                // A live event the stored read already held (output, or a gap) is not repeated.
                let runner: String
                switch event {
                case .output(let name, _, _), .dropped(let name, _): runner = name
                }
                if let count = replayed[runner], offset <= count { continue }
                return event
            }
        }
    }
}
