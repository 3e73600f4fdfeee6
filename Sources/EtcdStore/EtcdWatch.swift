import Foundation
import GRPCCore
import Reconciler
import Synchronization

extension EtcdConnection {
    /// A stream of the events in `range` after revision `after`, converted by `convert` (nil skips one).
    ///
    /// Several events of one transaction share a revision; etcd delivers them in one response, so none is lost.
    ///
    /// Resumes after its last delivered revision when the connection drops, for up to `watchResumeWindow`.
    func watch<Element: Sendable>(
        range: (start: Data, end: Data), after: Int64, bufferSize: Int,
        convert: @escaping @Sendable (Mvccpb_Event) -> Element?
    ) throws -> AsyncThrowingStream<Element, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: Element.self, throwing: (any Error).self, bufferingPolicy: .bufferingOldest(bufferSize))
        let cursor = WatchCursor(after)
        let spawned = spawn { [self] in
            await follow(range: range, cursor: cursor, continuation: continuation, convert: convert)
        }
        guard let (id, task) = spawned else {
            throw StoreError(code: .unavailable, message: "the etcd store is closed")
        }
        continuation.onTermination = { [weak self] _ in
            task.cancel()
            self?.forget(id)
        }
        return stream
    }

    private func follow<Element: Sendable>(
        range: (start: Data, end: Data), cursor: WatchCursor,
        continuation: AsyncThrowingStream<Element, any Error>.Continuation,
        convert: @escaping @Sendable (Mvccpb_Event) -> Element?
    ) async {
        let clock = ContinuousClock()
        var failingSince: ContinuousClock.Instant?
        var delay = Duration.milliseconds(50)
        while true {
            let error: any Error
            do {
                try await watchOnce(range: range, cursor: cursor, continuation: continuation, convert: convert)
                error = StoreError(code: .unavailable, message: "etcd ended the watch")
            } catch let end as WatchEnd {
                // Compaction, a slow consumer or etcd cancelling the watch end it for good.
                continuation.finish(throwing: end.error)
                return
            } catch let failure {
                error = storeError(failure, doing: "watch")
            }
            if Task.isCancelled || isClosed {
                continuation.finish(throwing: StoreError(code: .unavailable, message: "the etcd store is closed"))
                return
            }
            // A lost connection is retried from the last delivered revision.
            if cursor.progressed() {
                failingSince = nil
                delay = .milliseconds(50)
            }
            let since = failingSince ?? clock.now
            failingSince = since
            guard since.duration(to: clock.now) < Self.watchResumeWindow else {
                continuation.finish(throwing: error)
                return
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }

    /// One Watch call from the cursor's revision; returns or throws when the call ends.
    private func watchOnce<Element: Sendable>(
        range: (start: Data, end: Data), cursor: WatchCursor,
        continuation: AsyncThrowingStream<Element, any Error>.Continuation,
        convert: @escaping @Sendable (Mvccpb_Event) -> Element?
    ) async throws {
        var create = Etcdserverpb_WatchCreateRequest()
        create.key = range.start
        create.rangeEnd = range.end
        create.startRevision = cursor.revision + 1
        create.prevKv = true
        var message = Etcdserverpb_WatchRequest()
        message.createRequest = create
        let request = message
        let (responseEnded, ended) = AsyncStream.makeStream(of: Void.self)
        var options = CallOptions.defaults
        options.waitForReady = true
        try await watches.watch(
            options: options,
            requestProducer: { writer in
                try await writer.write(request)
                // etcd ends a watch whose request side closes; keep it open until the responses end.
                for await _ in responseEnded {}
            },
            onResponse: { response in
                defer { ended.finish() }
                for try await message in response.messages {
                    if message.compactRevision > 0 {
                        throw WatchEnd(
                            error: StoreError(
                                code: .compacted,
                                message: "revision \(cursor.revision + 1) has been compacted; list again",
                                currentRevision: message.compactRevision))
                    }
                    if message.canceled {
                        throw WatchEnd(
                            error: StoreError(
                                code: .unavailable, message: "etcd cancelled the watch: \(message.cancelReason)"))
                    }
                    if message.created { cursor.connected() }
                    let delivered = cursor.revision
                    for event in message.events where event.kv.modRevision > delivered {
                        if let converted = convert(event), case .dropped = continuation.yield(converted) {
                            throw WatchEnd(
                                error: StoreError(code: .unavailable, message: "the watcher fell behind; list again"))
                        }
                        cursor.delivered(event.kv.modRevision)
                    }
                }
            })
    }
}

/// A reason to end a watch for good rather than resume it.
struct WatchEnd: Error {
    var error: StoreError
}

/// The last revision a watch delivered, and whether it has made progress since the last failure.
final class WatchCursor: Sendable {
    private let state: Mutex<(revision: Int64, progressed: Bool)>

    init(_ revision: Int64) {
        state = Mutex((revision, false))
    }

    var revision: Int64 { state.withLock { $0.revision } }

    func delivered(_ revision: Int64) {
        state.withLock { $0 = (revision, true) }
    }

    func connected() {
        state.withLock { $0.progressed = true }
    }

    /// Whether the watch progressed since the last call; resets the flag.
    func progressed() -> Bool {
        state.withLock { state in
            defer { state.progressed = false }
            return state.progressed
        }
    }
}
