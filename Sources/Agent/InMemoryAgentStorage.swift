import Synchronization

/// Slice and identity storage in memory: for simulated agents, for `steady up`'s embedded agent when nothing
/// should touch the disk, and for tests.
public final class InMemoryAgentStorage: SliceStorage, IdentityStorage {
    private struct Contents {
        var slice: RunnerSlice?
        var identity: AgentIdentity?
        var sliceSaves = 0
    }

    private let contents: Mutex<Contents>

    /// Creates a storage holding `slice` and `identity`.
    public init(slice: RunnerSlice? = nil, identity: AgentIdentity? = nil) {
        contents = Mutex(Contents(slice: slice, identity: identity))
    }

    public func loadSlice() -> RunnerSlice? { contents.withLock { $0.slice } }

    public func saveSlice(_ slice: RunnerSlice) {
        contents.withLock {
            $0.slice = slice
            $0.sliceSaves += 1
        }
    }

    public func loadIdentity() -> AgentIdentity? { contents.withLock { $0.identity } }

    public func saveIdentity(_ identity: AgentIdentity) { contents.withLock { $0.identity = identity } }

    /// How many times a slice was saved.
    public var sliceSaveCount: Int { contents.withLock { $0.sliceSaves } }
}
