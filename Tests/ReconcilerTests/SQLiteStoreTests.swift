import Foundation
import SQLiteSupport
import Testing

@testable import Reconciler

/// Tests for `SQLiteStore`, each against a fresh database in its own temporary directory.
@Suite(.timeLimit(.minutes(5))) struct SQLiteStoreTests {
    // MARK: - Objects

    @Test func createGetListUpdateDelete() async throws {
        try await withStore { store, _ in
            let created = try await store.create(kind: "Route", name: "web", value: json("v1"))
            #expect(
                created
                    == StoredObject(kind: "Route", name: "web", value: json("v1"), createRevision: 1, modRevision: 1)
            )
            #expect(try await store.get(kind: "Route", name: "web") == created)
            #expect(try await store.get(kind: "Route", name: "missing") == nil)
            #expect(try await store.get(kind: "Backend", name: "web") == nil)

            let updated = try await store.update(kind: "Route", name: "web", value: json("v2"), expectedRevision: 1)
            #expect(updated.createRevision == 1)
            #expect(updated.modRevision == 2)
            #expect(updated.value == json("v2"))
            #expect(try await store.get(kind: "Route", name: "web") == updated)

            let listed = try await store.list(kind: "Route")
            #expect(listed.objects == [updated])
            #expect(listed.revision == 2)

            let deleted = try await store.delete(kind: "Route", name: "web", expectedRevision: 2)
            #expect(deleted.value == json("v2"))
            #expect(deleted.createRevision == 1)
            #expect(deleted.modRevision == 3)
            #expect(try await store.get(kind: "Route", name: "web") == nil)
            let afterDelete = try await store.list(kind: "Route")
            #expect(afterDelete.objects.isEmpty)
            #expect(afterDelete.revision == 3)
            #expect(try await store.currentRevision() == 3)
        }
    }

    @Test func listIsSortedByNameAndFilteredByKind() async throws {
        try await withStore { store, _ in
            for name in ["c", "a", "b"] {
                _ = try await store.create(kind: "Route", name: name, value: json(name))
            }
            _ = try await store.create(kind: "Backend", name: "a", value: json("backend"))
            let routes = try await store.list(kind: "Route")
            #expect(routes.objects.map(\.name) == ["a", "b", "c"])
            #expect(routes.revision == 4)
            let all = try await store.list(kind: nil)
            #expect(all.objects.map { "\($0.kind)/\($0.name)" } == ["Backend/a", "Route/a", "Route/b", "Route/c"])
            #expect(try await store.list(kind: "Nothing").objects.isEmpty)
        }
    }

    @Test func emptyValuesAndUnicodeNamesRoundTrip() async throws {
        try await withStore { store, _ in
            _ = try await store.create(kind: "Route", name: "naïve-名前", value: Data())
            let object = try await store.get(kind: "Route", name: "naïve-名前")
            #expect(object?.value == Data())
            #expect(try await store.get(kind: "Route", name: "naive-名前") == nil)
            #expect(try await store.list(kind: nil).objects.map(\.name) == ["naïve-名前"])
        }
    }

    @Test func creatingAnExistingNameFails() async throws {
        try await withStore { store, _ in
            _ = try await store.create(kind: "Route", name: "web", value: json("v1"))
            let error = try await storeError { try await store.create(kind: "Route", name: "web", value: json("v2")) }
            #expect(error?.code == .alreadyExists)
            // The same name under another kind is a different object.
            _ = try await store.create(kind: "Backend", name: "web", value: json("b"))
            #expect(try await store.get(kind: "Route", name: "web")?.value == json("v1"))
            #expect(try await store.currentRevision() == 2)
        }
    }

    @Test func staleExpectedRevisionConflictsAndReportsTheCurrentOne() async throws {
        try await withStore { store, _ in
            _ = try await store.create(kind: "Route", name: "web", value: json("v1"))
            _ = try await store.update(kind: "Route", name: "web", value: json("v2"), expectedRevision: 1)

            let update = try await storeError {
                try await store.update(kind: "Route", name: "web", value: json("v3"), expectedRevision: 1)
            }
            #expect(update?.code == .conflict)
            #expect(update?.currentRevision == 2)

            let delete = try await storeError {
                try await store.delete(kind: "Route", name: "web", expectedRevision: 1)
            }
            #expect(delete?.code == .conflict)
            #expect(delete?.currentRevision == 2)

            // Failed writes take no revision and change nothing.
            #expect(try await store.currentRevision() == 2)
            #expect(try await store.get(kind: "Route", name: "web")?.value == json("v2"))

            // A nil expected revision skips the check.
            let forced = try await store.update(kind: "Route", name: "web", value: json("v4"), expectedRevision: nil)
            #expect(forced.modRevision == 3)
        }
    }

    @Test func updatingOrDeletingAMissingObjectIsNotFound() async throws {
        try await withStore { store, _ in
            let update = try await storeError {
                try await store.update(kind: "Route", name: "ghost", value: json("x"), expectedRevision: nil)
            }
            #expect(update?.code == .notFound)
            let delete = try await storeError {
                try await store.delete(kind: "Route", name: "ghost", expectedRevision: 7)
            }
            #expect(delete?.code == .notFound)
            #expect(try await store.currentRevision() == 0)
        }
    }

    @Test func revisionIsOneCounterAcrossKinds() async throws {
        try await withStore { store, _ in
            var revisions: [Int64] = []
            for index in 0..<6 {
                let kind = ["Route", "Backend", "Certificate"][index % 3]
                revisions.append(
                    try await store.create(kind: kind, name: "n\(index)", value: json("\(index)")).modRevision
                )
            }
            revisions.append(
                try await store.update(kind: "Backend", name: "n1", value: json("u"), expectedRevision: 2).modRevision
            )
            revisions.append(try await store.delete(kind: "Route", name: "n0", expectedRevision: nil).modRevision)
            #expect(revisions == Array(1...8))
            #expect(try await store.currentRevision() == 8)
        }
    }

    @Test func deleteThenRecreateGetsANewCreateRevision() async throws {
        try await withStore { store, _ in
            _ = try await store.create(kind: "Route", name: "web", value: json("first"))
            _ = try await store.delete(kind: "Route", name: "web", expectedRevision: nil)
            let again = try await store.create(kind: "Route", name: "web", value: json("second"))
            #expect(again.createRevision == 3)
            #expect(again.modRevision == 3)
            #expect(try await store.get(kind: "Route", name: "web") == again)

            let events = try await collect(try await store.watch(kind: nil, fromRevision: 0), count: 3)
            #expect(events.map(\.type) == [.added, .deleted, .added])
            // The delete event carries the last value, the original createRevision and the delete's revision.
            #expect(
                events[1].object
                    == StoredObject(kind: "Route", name: "web", value: json("first"), createRevision: 1, modRevision: 2)
            )
            #expect(events[2].object == again)
        }
    }

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

    @Test func watchFromZeroReplaysThenGoesLiveWithoutGapOrDuplicate() async throws {
        try await withStore(watchBufferSize: 100_000) { store, _ in
            let writers = 8
            let writesPerWriter = 250
            let total = Int64(writers * writesPerWriter)
            let watches = try await withThrowingTaskGroup(of: (from: Int64, events: [StoreEvent])?.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        for index in 0..<writesPerWriter {
                            let name = "w\(writer)-\(index / 2)"
                            if index % 2 == 0 {
                                _ = try await store.create(kind: "Route", name: name, value: json("\(index)"))
                            } else {
                                _ = try await store.update(
                                    kind: "Route",
                                    name: name,
                                    value: json("\(index)"),
                                    expectedRevision: nil
                                )
                            }
                        }
                        return nil
                    }
                }
                // Start watchers while the writers are busy, so catching up and going live overlap with commits:
                // from the beginning, from the middle of the history so far, and from its end.
                var started = 0
                let clock = ContinuousClock()
                let deadline = clock.now.advanced(by: .seconds(20))
                while started < 30, clock.now < deadline {
                    let current = try await store.currentRevision()
                    // At least three watchers, even on a machine so loaded that the writers finish first.
                    if current >= total && started >= 3 {
                        break
                    }
                    // A watch must start before the last write, or it has nothing to wait for.
                    let from: Int64 = [0, current / 2, min(current, total - 1)][started % 3]
                    let stream = try await store.watch(kind: nil, fromRevision: from)
                    group.addTask { (from, try await collect(stream, through: total)) }
                    started += 1
                    try await Task.sleep(for: .microseconds(200))
                }
                var watches: [(from: Int64, events: [StoreEvent])] = []
                for try await case let watch? in group {
                    watches.append(watch)
                }
                return watches
            }
            #expect(watches.count >= 3)
            #expect(watches.contains { $0.from == 0 })
            for watch in watches {
                // Compare against the exact consecutive sequence; report only where it first differs.
                let revisions = watch.events.map(\.revision)
                let expected = Array(watch.from + 1...total)
                let firstDifference =
                    zip(revisions, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    ?? (revisions.count == expected.count ? nil : min(revisions.count, expected.count))
                #expect(
                    firstDifference == nil,
                    """
                    watch from \(watch.from): \(revisions.count) events, expected \(expected.count); first difference \
                    at \(firstDifference ?? -1): \(revisions.dropFirst(max((firstDifference ?? 0) - 2, 0)).prefix(6))
                    """
                )
                for event in watch.events {
                    #expect(event.revision == event.object.modRevision)
                    #expect(event.type == (event.object.createRevision == event.revision ? .added : .modified))
                }
            }
        }
    }

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

    @Test func watchFilteredByKindSeesOnlyThatKind() async throws {
        try await withStore { store, _ in
            _ = try await store.create(kind: "Route", name: "r1", value: json("r1"))
            _ = try await store.create(kind: "Backend", name: "b1", value: json("b1"))
            let stream = try await store.watch(kind: "Route", fromRevision: 0)
            _ = try await store.create(kind: "Backend", name: "b2", value: json("b2"))
            _ = try await store.update(kind: "Route", name: "r1", value: json("r1b"), expectedRevision: 1)
            _ = try await store.delete(kind: "Backend", name: "b1", expectedRevision: nil)
            _ = try await store.delete(kind: "Route", name: "r1", expectedRevision: nil)
            let events = try await collect(stream, count: 3)
            #expect(events.map(\.revision) == [1, 4, 6])
            #expect(events.map(\.type) == [.added, .modified, .deleted])
            #expect(events.allSatisfy { $0.object.kind == "Route" })
            #expect(events.last?.object.value == json("r1b"))
        }
    }

    @Test func watchFromTheCurrentRevisionSeesOnlyNewEvents() async throws {
        try await withStore { store, _ in
            _ = try await store.create(kind: "Route", name: "old", value: json("old"))
            let listed = try await store.list(kind: "Route")
            let stream = try await store.watch(kind: "Route", fromRevision: listed.revision)
            _ = try await store.create(kind: "Route", name: "new", value: json("new"))
            let events = try await collect(stream, count: 1)
            #expect(events.map(\.object.name) == ["new"])
            #expect(events.first?.revision == 2)
        }
    }

    @Test func compactionDropsOldHistoryButNotLiveState() async throws {
        try await withStore { store, _ in
            for index in 1...10 {
                _ = try await store.create(kind: "Route", name: "r\(index)", value: json("\(index)"))
            }
            #expect(try await store.compact(keepingRevisions: 3) == 7)
            #expect(try await store.compactedRevision() == 7)

            let error = try await storeError { try await store.watch(kind: nil, fromRevision: 6) }
            #expect(error?.code == .compacted)
            #expect(error?.currentRevision == 7)
            let filtered = try await storeError { try await store.watch(kind: "Route", fromRevision: 0) }
            #expect(filtered?.code == .compacted)

            let events = try await collect(try await store.watch(kind: nil, fromRevision: 7), count: 3)
            #expect(events.map(\.revision) == [8, 9, 10])
            #expect(try await store.list(kind: "Route").objects.count == 10)
            #expect(try await store.get(kind: "Route", name: "r1")?.modRevision == 1)

            // Compaction never moves backwards, and keeping nothing compacts up to the current revision.
            #expect(try await store.compact(keepingRevisions: 100) == 7)
            #expect(try await store.compact(keepingRevisions: 0) == 10)
            #expect(try await store.list(kind: nil).objects.count == 10)
            let live = try await store.watch(kind: nil, fromRevision: 10)
            _ = try await store.update(kind: "Route", name: "r1", value: json("again"), expectedRevision: 1)
            #expect(try await collect(live, count: 1).map(\.revision) == [11])
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
    Data("{\"v\":\"\(text)\"}".utf8)
}

private struct Timeout: Error {}

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

/// The `StoreError` thrown by `body`, or nil when it succeeds; other errors fail the test.
private func storeError<T>(_ body: () async throws -> T) async throws -> StoreError? {
    do {
        _ = try await body()
        return nil
    } catch let error as StoreError {
        return error
    }
}

/// The first `count` events of `stream`, failing after `timeout` so a missing event cannot hang the suite.
private func collect(
    _ stream: AsyncThrowingStream<StoreEvent, any Error>,
    count: Int,
    timeout: Duration = .seconds(20)
) async throws -> [StoreEvent] {
    try await collect(stream, timeout: timeout) { events in events.count >= count }
}

/// The events of `stream` up to the first one at or after `revision`.
private func collect(
    _ stream: AsyncThrowingStream<StoreEvent, any Error>,
    through revision: Int64,
    timeout: Duration = .seconds(20)
) async throws -> [StoreEvent] {
    try await collect(stream, timeout: timeout) { events in (events.last?.revision ?? 0) >= revision }
}

private func collect(
    _ stream: AsyncThrowingStream<StoreEvent, any Error>,
    timeout: Duration,
    until done: @escaping @Sendable ([StoreEvent]) -> Bool
) async throws -> [StoreEvent] {
    try await withThrowingTaskGroup(of: [StoreEvent]?.self) { group in
        group.addTask {
            var events: [StoreEvent] = []
            for try await event in stream {
                events.append(event)
                if done(events) {
                    break
                }
            }
            return events
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        guard let events = first else {
            throw Timeout()
        }
        return events
    }
}
