#if canImport(Glibc)
    import Glibc
#endif

/// Limits glibc's malloc arenas for a long-running process: the controller, and an agent.
///
/// glibc gives each thread that meets contention an arena of its own (up to eight per core), and each arena keeps
/// the memory its frees leave behind. On a busy controller (event loops, the cooperative pool, SQLite's threads) the
/// resident size then creeps up while the live heap stays flat: heaptrack showed the heap level after a few minutes
/// of the soak while RSS went on rising (RELIABILITY.md, "Load"). Two arenas keep that retention small. An operator's
/// own `MALLOC_ARENA_MAX` wins.
public enum MallocArenas {
    /// glibc's `M_ARENA_MAX` (malloc.h, which Swift's Glibc module does not import).
    private static let arenaMaxParameter: Int32 = -8

    /// Allows at most `count` arenas from now on, unless `MALLOC_ARENA_MAX` is set; nothing off glibc.
    public static func limit(to count: Int32 = 2) {
        #if canImport(Glibc)
            guard getenv("MALLOC_ARENA_MAX") == nil, let symbol = dlsym(nil, "mallopt") else { return }
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            _ = unsafeBitCast(symbol, to: Mallopt.self)(arenaMaxParameter, count)
        #endif
    }
}
