import Foundation
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Process-wide settings for a process that runs one agent, which holds one connection and idles: one event-loop
/// thread instead of one per core, one blocking-pool thread, and at most two malloc arenas (glibc's default is
/// eight per core, each keeping freed memory of its own).
///
/// Apply them before anything uses SwiftNIO's singleton event-loop group. The environment variables
/// `NIO_SINGLETON_GROUP_LOOP_COUNT`, `NIO_SINGLETON_BLOCKING_POOL_THREAD_COUNT` and `MALLOC_ARENA_MAX`, when set,
/// win.
enum AgentProcessSettings {
    static func apply(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil {
            NIOSingletons.groupLoopCountSuggestion = 1
        }
        if environment["NIO_SINGLETON_BLOCKING_POOL_THREAD_COUNT"] == nil {
            NIOSingletons.blockingPoolThreadCountSuggestion = 1
        }
        if environment["MALLOC_ARENA_MAX"] == nil {
            limitMallocArenas(to: 2)
        }
    }

    /// `mallopt(M_ARENA_MAX, count)` on glibc; nothing elsewhere. The Glibc module does not export `<malloc.h>`,
    /// so the function is looked up by name.
    private static func limitMallocArenas(to count: Int32) {
        #if canImport(Glibc)
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            let arenaMaximum: Int32 = -8  // M_ARENA_MAX in <malloc.h>
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
            _ = unsafeBitCast(symbol, to: Mallopt.self)(arenaMaximum, count)
        #endif
    }
}
