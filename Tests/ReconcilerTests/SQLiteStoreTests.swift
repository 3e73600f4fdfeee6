import Foundation
import SQLiteSupport
import Testing

@testable import Reconciler
import SteadyTesting

/// Tests of what only `SQLiteStore` has (files, group commit, its watch hub), each against a fresh database.
///
/// The behaviour every backend shares is in `ObjectStoreConformanceTests`.
@Suite(.timeLimit(.minutes(5))) struct SQLiteStoreTests {
    // MARK: - Objects

    @Test func reopeningKeepsObjectsRevisionsAndHistory() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/store.db"
            do {
                let store = try SQLiteStore(path: path)
                _ = try await store.create(kind: "Route", name: "a", value: json("a"))
                _ = try await store.create(kind: "Route", name: "b", value: json("b"))
                _ = try await store.update(kind: "Route", name: "a", value: json("a2"), expectedRevision: 1)
                _ = try await store.delete(kind: "Route", name: "b", expectedRevision: nil)
                #expect(try await store.compact(keepingRevisions: 2) == 2)
                store.close()
            }
            let store = try SQLiteStore(path: path, synchronous: .full)
            defer { store.close() }
            #expect(try await store.currentRevision() == 4)
            #expect(try await store.compactedRevision() == 2)
            #expect(try await store.list(kind: nil).objects.map(\.name) == ["a"])
            #expect(try await store.get(kind: "Route", name: "a")?.modRevision == 3)
            let next = try await store.create(kind: "Route", name: "c", value: json("c"))
            #expect(next.modRevision == 5)
            let events = try await collect(try await store.watch(kind: nil, fromRevision: 2), count: 3)
            #expect(events.map(\.revision) == [3, 4, 5])
        }
    }

    @Test func databaseFilesAreOwnerOnly() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/store.db"
            let store = try SQLiteStore(path: path)
            defer { store.close() }
            _ = try await store.create(kind: "Route", name: "a", value: json("a"))
            _ = try await store.list(kind: nil)
            for file in [path, path + "-wal", path + "-shm"] {
                let attributes = try FileManager.default.attributesOfItem(atPath: file)
                let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue
                #expect(mode == 0o600, "\(file) has mode \(String(mode ?? -1, radix: 8))")
            }
        }
    }

    // MARK: - Concurrency and group commit

    @Test func manyConcurrentWritersAllSucceedWithDistinctRevisions() async throws {
        try await withStore { store, _ in
            let count = 2_000
            let revisions = try await withThrowingTaskGroup(of: Int64.self) { group in
                for index in 0..<count {
                    group.addTask {
                        try await store.create(
                            kind: index % 2 == 0 ? "Route" : "Backend",
                            name: "o\(index)",
                            value: json("\(index)")
                        )
                        .modRevision
                    }
                }
                var revisions: [Int64] = []
                for try await revision in group {
                    revisions.append(revision)
                }
                return revisions
            }
            #expect(revisions.count == count)
            #expect(Set(revisions).count == count)
            #expect(revisions.sorted() == Array(1...Int64(count)))
            #expect(try await store.currentRevision() == Int64(count))
            #expect(try await store.list(kind: nil).objects.count == count)
            // Group commit: far fewer transactions than writes.
            #expect(store.batchWriter.committedBatches < count)
        }
    }

    @Test func aFailedRequestInABatchDoesNotAffectItsBatchMates() async throws {
        try await withStore { store, _ in
            _ = try await store.create(kind: "Route", name: "shared", value: json("v1"))
            let writer = store.batchWriter
            let batchesBefore = writer.committedBatches
            writer.pause()

            enum Outcome: Sendable, Equatable {
                case stored(String, Int64)
                case failed(String, StoreError.Code, Int64?)
            }
            let attempts: [(label: String, write: @Sendable () async throws -> StoredObject)] = [
                (
                    "casA",
                    { try await store.update(kind: "Route", name: "shared", value: json("A"), expectedRevision: 1) }
                ),
                (
                    "casB",
                    { try await store.update(kind: "Route", name: "shared", value: json("B"), expectedRevision: 1) }
                ),
                ("dup", { try await store.create(kind: "Route", name: "shared", value: json("dup")) }),
                ("ghost", { try await store.delete(kind: "Route", name: "ghost", expectedRevision: nil) }),
                ("x1", { try await store.create(kind: "Route", name: "x1", value: json("x1")) }),
                ("x2", { try await store.create(kind: "Backend", name: "x2", value: json("x2")) }),
                ("x3", { try await store.create(kind: "Route", name: "x3", value: json("x3")) }),
            ]
            let outcomes = try await withThrowingTaskGroup(of: Outcome.self) { group in
                for attempt in attempts {
                    group.addTask {
                        do {
                            return .stored(attempt.label, try await attempt.write().modRevision)
                        } catch let error as StoreError {
                            return .failed(attempt.label, error.code, error.currentRevision)
                        }
                    }
                }
                // Let every request queue up behind the paused writer, so they commit as one batch.
                let clock = ContinuousClock()
                let deadline = clock.now.advanced(by: .seconds(10))
                while writer.queuedCount < attempts.count, clock.now < deadline {
                    try await Task.sleep(for: .milliseconds(1))
                }
                #expect(writer.queuedCount == attempts.count)
                writer.resume()
                var outcomes: [Outcome] = []
                for try await outcome in group {
                    outcomes.append(outcome)
                }
                return outcomes
            }
            #expect(writer.committedBatches == batchesBefore + 1)

            let stored = outcomes.compactMap { outcome -> (String, Int64)? in
                if case .stored(let label, let revision) = outcome { return (label, revision) }
                return nil
            }
            #expect(Set(stored.map(\.0)).isSuperset(of: ["x1", "x2", "x3"]))
            #expect(stored.map(\.1).sorted() == [2, 3, 4, 5])
            let casWinners = stored.filter { $0.0.hasPrefix("cas") }
            #expect(casWinners.count == 1)
            let winnerRevision = casWinners.first?.1
            let loser = casWinners.first?.0 == "casA" ? "casB" : "casA"
            #expect(outcomes.contains(.failed(loser, .conflict, winnerRevision)))
            #expect(outcomes.contains(.failed("dup", .alreadyExists, nil)))
            #expect(outcomes.contains(.failed("ghost", .notFound, nil)))
            #expect(try await store.list(kind: nil).objects.count == 4)
            #expect(try await store.currentRevision() == 5)
        }
    }

    @Test func anSQLiteErrorInOneRequestFailsOnlyThatRequest() async throws {
        try await withStore { store, _ in
            let writer = store.batchWriter
            try writer.limitLength(to: 1_000)
            writer.pause()
            let names = ["small-1", "too-big", "small-2"]
            let outcomes = try await withThrowingTaskGroup(of: (String, Result<Int64, StoreError>).self) { group in
                for name in names {
                    group.addTask {
                        let value = name == "too-big" ? Data(repeating: 0x41, count: 2_000) : json(name)
                        do {
                            return (
                                name,
                                .success(try await store.create(kind: "Route", name: name, value: value).modRevision)
                            )
                        } catch let error as StoreError {
                            return (name, .failure(error))
                        }
                    }
                }
                let clock = ContinuousClock()
                let deadline = clock.now.advanced(by: .seconds(10))
                while writer.queuedCount < names.count, clock.now < deadline {
                    try await Task.sleep(for: .milliseconds(1))
                }
                writer.resume()
                var outcomes: [String: Result<Int64, StoreError>] = [:]
                for try await (name, outcome) in group {
                    outcomes[name] = outcome
                }
                return outcomes
            }
            #expect(try outcomes["small-1"]?.get() != nil)
            #expect(try outcomes["small-2"]?.get() != nil)
            guard case .failure(let error)? = outcomes["too-big"] else {
                Issue.record("the oversized create should fail, got \(String(describing: outcomes["too-big"]))")
                return
            }
            #expect(error.code == .unavailable)
            #expect(error.message.contains("too big"))
            #expect(writer.committedBatches == 1)
            #expect(try await store.currentRevision() == 2)
            #expect(try await store.list(kind: nil).objects.map(\.name) == ["small-1", "small-2"])
        }
    }

    // MARK: - Watch

    @Test func aWatcherGoesLiveOnlyAfterReadingEverythingPublished() async throws {
        try await withStore { store, path in
            for index in 1...3 {
                _ = try await store.create(kind: "Route", name: "r\(index)", value: json("\(index)"))
            }
            let reader = SQLiteReader(path: path)
            defer { reader.close() }
            // A hub that has already published revision 4, which this reader's snapshot does not contain yet.
            let hub = StoreWatchHub(revision: 4)
            let subscription = StoreWatchSubscription(
                hub: hub,
                reader: reader,
                kind: nil,
                fromRevision: 0,
                capacity: 16
            )
            #expect(hub.activate(subscription, cursor: 3) == .behind)
            try await subscription.start()
            #expect(hub.subscriberCount == 0)
            // Once revision 4 is in the log, catching up reads it and then goes live.
            _ = try await store.create(kind: "Route", name: "r4", value: json("4"))
            let lease = StoreWatchLease(subscription)
            let stream = AsyncThrowingStream(unfolding: { try await lease.subscription.next() })
            #expect(try await collect(stream, count: 4, timeout: .seconds(5)).map(\.revision) == [1, 2, 3, 4])
            #expect(hub.subscriberCount == 1)
            #expect(hub.activate(subscription, cursor: 4) == .live)
        }
    }

    @Test func liveEventsAlreadyReadFromTheLogAreSkipped() async throws {
        try await withStore { store, path in
            var events: [StoreEvent] = []
            for index in 1...3 {
                let object = try await store.create(kind: "Route", name: "r\(index)", value: json("\(index)"))
                events.append(StoreEvent(type: .added, object: object, revision: object.modRevision))
            }
            let reader = SQLiteReader(path: path)
            defer { reader.close() }
            // Revision 3 is committed (so the log has it) but not yet published when the watcher starts.
            let hub = StoreWatchHub(revision: 2)
            let subscription = StoreWatchSubscription(
                hub: hub,
                reader: reader,
                kind: nil,
                fromRevision: 0,
                capacity: 16
            )
            try await subscription.start()
            #expect(hub.subscriberCount == 1)
            let later = StoredObject(kind: "Route", name: "r4", value: json("4"), createRevision: 4, modRevision: 4)
            hub.publish([events[2], StoreEvent(type: .added, object: later, revision: 4)])
            let lease = StoreWatchLease(subscription)
            let stream = AsyncThrowingStream(unfolding: { try await lease.subscription.next() })
            #expect(try await collect(stream, count: 4, timeout: .seconds(5)).map(\.revision) == [1, 2, 3, 4])
        }
    }

    @Test func aWatcherThatFallsBehindIsCutOffWithoutBlockingWriters() async throws {
        try await withStore(watchBufferSize: 8) { store, _ in
            let slow = try await store.watch(kind: nil, fromRevision: 0)
            let other = try await store.watch(kind: nil, fromRevision: 0)
            #expect(store.watcherCount == 2)
            var otherIterator = other.makeAsyncIterator()
            for index in 1...20 {
                _ = try await store.create(kind: "Route", name: "r\(index)", value: json("\(index)"))
                // The other watcher keeps up and is unaffected.
                #expect(try await otherIterator.next()?.revision == Int64(index))
            }
            #expect(store.watcherCount == 1)
            var received: [Int64] = []
            var failure: StoreError?
            do {
                for try await event in slow {
                    received.append(event.revision)
                }
            } catch let error as StoreError {
                failure = error
            }
            #expect(received == Array(1...8))
            #expect(failure?.code == .unavailable)
            #expect(failure?.message.contains("fell behind") == true)
        }
    }

    @Test func cancellingOrDroppingAWatchUnregistersIt() async throws {
        try await withStore { store, _ in
            do {
                let stream = try await store.watch(kind: nil, fromRevision: 0)
                #expect(store.watcherCount == 1)
                _ = stream
            }
            #expect(store.watcherCount == 0)

            let stream = try await store.watch(kind: "Route", fromRevision: 0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await _ in stream {}
                }
                let clock = ContinuousClock()
                let deadline = clock.now.advanced(by: .seconds(5))
                while store.watcherCount != 1, clock.now < deadline {
                    try await Task.sleep(for: .milliseconds(1))
                }
                #expect(store.watcherCount == 1)
                group.cancelAll()
                try await group.waitForAll()
            }
            #expect(store.watcherCount == 0)
            // Writes keep working with nobody watching.
            _ = try await store.create(kind: "Route", name: "after", value: json("x"))
        }
    }

    @Test func closingEndsWatchesAndRejectsCalls() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/store.db")
            _ = try await store.create(kind: "Route", name: "a", value: json("a"))
            let stream = try await store.watch(kind: nil, fromRevision: 0)
            store.close()
            var revisions: [Int64] = []
            var failure: StoreError?
            do {
                for try await event in stream {
                    revisions.append(event.revision)
                }
            } catch let error as StoreError {
                failure = error
            }
            #expect(revisions == [1])
            #expect(failure?.code == .unavailable)
            #expect(
                try await storeError { try await store.create(kind: "Route", name: "b", value: json("b")) }?.code
                    == .unavailable
            )
            #expect(try await storeError { try await store.get(kind: "Route", name: "a") }?.code == .unavailable)
            #expect(try await storeError { try await store.watch(kind: nil, fromRevision: 0) }?.code == .unavailable)
            store.close()
        }
    }
}

// MARK: - Helpers

private func json(_ text: String) -> Data {
    StoreTestSupport.json(text)
}

private func withTemporaryDirectory(_ body: (String) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steady-store-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    try await body(directory.path)
}

private func withStore(
    watchBufferSize: Int = 1024,
    _ body: (SQLiteStore, String) async throws -> Void
) async throws {
    try await withTemporaryDirectory { directory in
        let path = directory + "/store.db"
        let store = try SQLiteStore(path: path, watchBufferSize: watchBufferSize)
        defer { store.close() }
        try await body(store, path)
    }
}

private func storeError<T>(_ body: () async throws -> T) async throws -> StoreError? {
    try await StoreTestSupport.storeError(body)
}

private func collect(
    _ stream: AsyncThrowingStream<StoreEvent, any Error>, count: Int, timeout: Duration = .seconds(20)
) async throws -> [StoreEvent] {
    try await StoreTestSupport.collect(stream, count: count, timeout: timeout)
}
