import Foundation
import NIOCore

/// Process-wide settings for a process that runs one agent, which holds one connection and idles: one event-loop
/// thread instead of one per core, one blocking-pool thread, and at most two malloc arenas (glibc's default is
/// eight per core, each keeping freed memory of its own).
///
/// An agent that takes in events (`--events-listen`) keeps SwiftNIO's thread counts, one per core: its one loop
/// served the intake and every HTTP delivery, and at 5,000 events/s to an HTTP action it was the bottleneck (p99
/// 24–34 ms; 10 ms with two loops).
///
/// Apply them before anything uses SwiftNIO's singleton event-loop group. The environment variables
/// `NIO_SINGLETON_GROUP_LOOP_COUNT`, `NIO_SINGLETON_BLOCKING_POOL_THREAD_COUNT` and `MALLOC_ARENA_MAX`, when set,
/// win.
enum AgentProcessSettings {
    static func apply(takesEvents: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) {
        if !takesEvents {
            if environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil {
                NIOSingletons.groupLoopCountSuggestion = 1
            }
            if environment["NIO_SINGLETON_BLOCKING_POOL_THREAD_COUNT"] == nil {
                NIOSingletons.blockingPoolThreadCountSuggestion = 1
            }
        }
        MallocArenas.limit(to: 2)
    }
}
