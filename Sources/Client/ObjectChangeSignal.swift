import Resources

/// Wakes a client when objects change, through one watch per kind, so that it looks again because something
/// changed rather than on a timer.
enum ObjectChangeSignal {
    /// Runs `body` while watching `kinds`; `body`'s `nextChange` returns once any object of those kinds changed
    /// since the last call (several changes wake it once), or once `deadline` passed.
    static func watching<Result: Sendable>(
        _ client: APIClient, kinds: [KindInfo], until deadline: ContinuousClock.Instant? = nil,
        _ body: (_ nextChange: () async -> Void) async throws -> Result
    ) async throws -> Result {
        let (changes, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for info in kinds {
                group.addTask { await follow(info, client: client, continuation: continuation) }
            }
            if let deadline {
                group.addTask {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    continuation.yield()
                }
            }
            defer { group.cancelAll() }
            var iterator = changes.makeAsyncIterator()
            return try await body { _ = await iterator.next() }
        }
    }

    /// Watches one kind until cancelled, watching again when the server ends the watch.
    private static func follow(
        _ info: KindInfo, client: APIClient, continuation: AsyncStream<Void>.Continuation
    ) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                for try await _ in client.watch(info, timeoutSeconds: 300) {
                    continuation.yield()
                    failures = 0
                }
            } catch {
                if Task.isCancelled { return }
                // The server refused or dropped the watch: try again, backing off.
                try? await Task.sleep(for: Backoff.watchRestart.jitteredDelay(attempt: failures))
                failures += 1
            }
            // Whatever changed while no watch was open.
            continuation.yield()
        }
    }
}
