import Resources
import Synchronization

/// Which slice each runner's agent holds, as far as the controller knows: written by the agent gateway when a
/// runner's sync state changes, read by the status reconcilers to count, for each Route, Action and Assignment,
/// the runners that hold its current generation.
///
/// A runner is in the index only while its agent is connected and reports the slice the controller wants it to
/// hold; a disconnected or lagging runner holds nothing. Slices are the gateway's shared values, so an entry
/// costs a name and a reference.
///
/// Changes are gathered rather than pushed: ``takeChangedKeys()`` returns the Routes and Actions whose holders
/// changed since the last call, so that a thousand runners syncing cost one re-reconcile per batch, not a
/// thousand.
public final class RunnerSyncIndex: Sendable {
    private struct State {
        var held: [String: SlicePlanner.Slice] = [:]
        var changedKeys: Set<SliceKey> = []
        /// The digests whose keys are already in `changedKeys`, so that runners moving between the same two
        /// slices add their keys once.
        var changedDigests: Set<String> = []

        mutating func noteChange(_ slice: SlicePlanner.Slice?) {
            guard let slice, changedDigests.insert(slice.digest).inserted else { return }
            changedKeys.formUnion(slice.objects.keys.lazy.filter(RunnerSyncIndex.isPlaced))
        }
    }

    private let state = Mutex(State())
    private let changed = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// Yields when the held slices changed since ``takeChangedKeys()`` was last called (several changes may be
    /// told as one); for the one consumer that takes the changed keys.
    public var changes: AsyncStream<Void> { changed.stream }

    /// Creates an empty index.
    public init() {}

    /// Records that `runner`'s agent holds `slice` (nil: nothing the controller can vouch for).
    public func set(runner: String, holds slice: SlicePlanner.Slice?) {
        let isChange = state.withLock { state in
            let old = state.held[runner]
            guard old?.digest != slice?.digest else { return false }
            state.held[runner] = slice
            state.noteChange(old)
            state.noteChange(slice)
            return true
        }
        if isChange { changed.continuation.yield() }
    }

    /// How many of `runners` hold every one of `placed` at that generation.
    public func countHolding(_ placed: [SliceKey: Int64], among runners: [String]) -> Int {
        state.withLock { state in
            runners.reduce(0) { count, runner in
                guard let slice = state.held[runner] else { return count }
                let holds = placed.allSatisfy { key, generation in slice.generation(of: key) == generation }
                return holds ? count + 1 : count
            }
        }
    }

    /// How many of the runners (the keys of `expected`) hold every key of their expected set at the generation
    /// given.
    public func countHolding(_ expected: [String: [SliceKey: Int64]]) -> Int {
        state.withLock { state in
            expected.reduce(0) { count, entry in
                guard let slice = state.held[entry.key] else { return count }
                let holds = entry.value.allSatisfy { key, generation in slice.generation(of: key) == generation }
                return holds ? count + 1 : count
            }
        }
    }

    /// The Routes and Actions whose holders changed since the last call.
    public func takeChangedKeys() -> Set<SliceKey> {
        state.withLock { state in
            defer {
                state.changedKeys = []
                state.changedDigests = []
            }
            return state.changedKeys
        }
    }

    static func isPlaced(_ key: SliceKey) -> Bool {
        key.kind == RouteSpec.kind || key.kind == ActionSpec.kind
    }
}
