import Foundation
import Reconciler
import SteadyTesting
import Testing

/// The `ObjectStore` contract, run against every backend so that their behaviour cannot drift apart.
///
/// Revisions are counted from the empty store's own (`base`): 0 for SQLite, 1 for etcd.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ObjectStoreConformanceTests {
    // MARK: - Objects

    @Test(arguments: StoreBackend.allCases) func createGetListUpdateDelete(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            let created = try await store.create(kind: "Route", name: "web", value: json("v1"))
            #expect(
                created
                    == StoredObject(
                        kind: "Route", name: "web", value: json("v1"), createRevision: base + 1, modRevision: base + 1)
            )
            #expect(try await store.get(kind: "Route", name: "web") == created)
            #expect(try await store.get(kind: "Route", name: "missing") == nil)
            #expect(try await store.get(kind: "Backend", name: "web") == nil)

            let updated = try await store.update(
                kind: "Route", name: "web", value: json("v2"), expectedRevision: base + 1)
            #expect(updated.createRevision == base + 1)
            #expect(updated.modRevision == base + 2)
            #expect(updated.value == json("v2"))
            #expect(try await store.get(kind: "Route", name: "web") == updated)

            let listed = try await store.list(kind: "Route")
            #expect(listed.objects == [updated])
            #expect(listed.revision == base + 2)

            let deleted = try await store.delete(kind: "Route", name: "web", expectedRevision: base + 2)
            #expect(deleted.value == json("v2"))
            #expect(deleted.createRevision == base + 1)
            #expect(deleted.modRevision == base + 3)
            #expect(try await store.get(kind: "Route", name: "web") == nil)
            let afterDelete = try await store.list(kind: "Route")
            #expect(afterDelete.objects.isEmpty)
            #expect(afterDelete.revision == base + 3)
            #expect(try await store.currentRevision() == base + 3)
        }
    }

    @Test(arguments: StoreBackend.allCases) func listIsSortedByNameAndFilteredByKind(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            for name in ["c", "a", "b"] {
                _ = try await store.create(kind: "Route", name: name, value: json(name))
            }
            _ = try await store.create(kind: "Backend", name: "a", value: json("backend"))
            // A kind whose name starts with another's must not leak into it.
            _ = try await store.create(kind: "RouteSet", name: "x", value: json("set"))
            let routes = try await store.list(kind: "Route")
            #expect(routes.objects.map(\.name) == ["a", "b", "c"])
            #expect(routes.revision == base + 5)
            let all = try await store.list(kind: nil)
            #expect(
                all.objects.map { "\($0.kind)/\($0.name)" }
                    == ["Backend/a", "Route/a", "Route/b", "Route/c", "RouteSet/x"])
            #expect(try await store.list(kind: "Nothing").objects.isEmpty)
        }
    }

    @Test(arguments: StoreBackend.allCases) func emptyValuesAndUnicodeNamesRoundTrip(backend: StoreBackend) async throws {
        try await backend.withStore { store, _ in
            _ = try await store.create(kind: "Route", name: "naïve-名前", value: Data())
            let object = try await store.get(kind: "Route", name: "naïve-名前")
            #expect(object?.value == Data())
            #expect(try await store.get(kind: "Route", name: "naive-名前") == nil)
            #expect(try await store.list(kind: nil).objects.map(\.name) == ["naïve-名前"])
        }
    }

    @Test(arguments: StoreBackend.allCases) func creatingAnExistingNameFails(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            _ = try await store.create(kind: "Route", name: "web", value: json("v1"))
            let error = try await storeError { try await store.create(kind: "Route", name: "web", value: json("v2")) }
            #expect(error?.code == .alreadyExists)
            // The same name under another kind is a different object.
            _ = try await store.create(kind: "Backend", name: "web", value: json("b"))
            #expect(try await store.get(kind: "Route", name: "web")?.value == json("v1"))
            #expect(try await store.currentRevision() == base + 2)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func staleExpectedRevisionConflictsAndReportsTheCurrentOne(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            _ = try await store.create(kind: "Route", name: "web", value: json("v1"))
            _ = try await store.update(kind: "Route", name: "web", value: json("v2"), expectedRevision: base + 1)

            let update = try await storeError {
                try await store.update(kind: "Route", name: "web", value: json("v3"), expectedRevision: base + 1)
            }
            #expect(update?.code == .conflict)
            #expect(update?.currentRevision == base + 2)

            let delete = try await storeError {
                try await store.delete(kind: "Route", name: "web", expectedRevision: base + 1)
            }
            #expect(delete?.code == .conflict)
            #expect(delete?.currentRevision == base + 2)

            // Failed writes take no revision and change nothing.
            #expect(try await store.currentRevision() == base + 2)
            #expect(try await store.get(kind: "Route", name: "web")?.value == json("v2"))

            // A nil expected revision skips the check.
            let forced = try await store.update(kind: "Route", name: "web", value: json("v4"), expectedRevision: nil)
            #expect(forced.modRevision == base + 3)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func updatingOrDeletingAMissingObjectIsNotFound(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            let update = try await storeError {
                try await store.update(kind: "Route", name: "ghost", value: json("x"), expectedRevision: nil)
            }
            #expect(update?.code == .notFound)
            let delete = try await storeError {
                try await store.delete(kind: "Route", name: "ghost", expectedRevision: 7)
            }
            #expect(delete?.code == .notFound)
            #expect(try await store.currentRevision() == base)
        }
    }

    @Test(arguments: StoreBackend.allCases) func revisionIsOneCounterAcrossKinds(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            var revisions: [Int64] = []
            for index in 0..<6 {
                let kind = ["Route", "Backend", "Certificate"][index % 3]
                revisions.append(
                    try await store.create(kind: kind, name: "n\(index)", value: json("\(index)")).modRevision
                )
            }
            revisions.append(
                try await store.update(kind: "Backend", name: "n1", value: json("u"), expectedRevision: base + 2)
                    .modRevision
            )
            revisions.append(try await store.delete(kind: "Route", name: "n0", expectedRevision: nil).modRevision)
            #expect(revisions == Array(base + 1...base + 8))
            #expect(try await store.currentRevision() == base + 8)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func manyConcurrentWritersAllSucceedWithDistinctRevisions(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            let count = 300
            let revisions = try await withThrowingTaskGroup(of: Int64.self) { group in
                for index in 0..<count {
                    group.addTask {
                        try await store.create(
                            kind: index % 2 == 0 ? "Route" : "Backend", name: "o\(index)", value: json("\(index)")
                        ).modRevision
                    }
                }
                var revisions: [Int64] = []
                for try await revision in group {
                    revisions.append(revision)
                }
                return revisions
            }
            #expect(revisions.sorted() == Array(base + 1...base + Int64(count)))
            #expect(try await store.currentRevision() == base + Int64(count))
            #expect(try await store.list(kind: nil).objects.count == count)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func deleteThenRecreateGetsANewCreateRevision(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            _ = try await store.create(kind: "Route", name: "web", value: json("first"))
            _ = try await store.delete(kind: "Route", name: "web", expectedRevision: nil)
            let again = try await store.create(kind: "Route", name: "web", value: json("second"))
            #expect(again.createRevision == base + 3)
            #expect(again.modRevision == base + 3)
            #expect(try await store.get(kind: "Route", name: "web") == again)

            let events = try await collect(try await store.watch(kind: nil, fromRevision: base), count: 3)
            #expect(events.map(\.type) == [.added, .deleted, .added])
            // The delete event carries the last value, the original createRevision and the delete's revision.
            #expect(
                events[1].object
                    == StoredObject(
                        kind: "Route", name: "web", value: json("first"), createRevision: base + 1,
                        modRevision: base + 2)
            )
            #expect(events[2].object == again)
        }
    }

    // MARK: - Watch

    @Test(arguments: StoreBackend.allCases)
    func watchReplaysThenGoesLiveWithoutGapOrDuplicate(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            let writers = 4
            let writesPerWriter = 100
            let total = base + Int64(writers * writesPerWriter)
            let watches = try await withThrowingTaskGroup(of: (from: Int64, events: [StoreEvent])?.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        for index in 0..<writesPerWriter {
                            let name = "w\(writer)-\(index / 2)"
                            if index % 2 == 0 {
                                _ = try await store.create(kind: "Route", name: name, value: json("\(index)"))
                            } else {
                                _ = try await store.update(
                                    kind: "Route", name: name, value: json("\(index)"), expectedRevision: nil)
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
                while started < 12, clock.now < deadline {
                    let current = try await store.currentRevision()
                    if current >= total && started >= 3 {
                        break
                    }
                    let from: Int64 = [base, base + (current - base) / 2, min(current, total - 1)][started % 3]
                    let stream = try await store.watch(kind: nil, fromRevision: from)
                    group.addTask { (from, try await collect(stream, through: total)) }
                    started += 1
                    try await Task.sleep(for: .milliseconds(1))
                }
                var watches: [(from: Int64, events: [StoreEvent])] = []
                for try await case let watch? in group {
                    watches.append(watch)
                }
                return watches
            }
            #expect(watches.count >= 3)
            #expect(watches.contains { $0.from == base })
            for watch in watches {
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

    @Test(arguments: StoreBackend.allCases) func watchFilteredByKindSeesOnlyThatKind(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            _ = try await store.create(kind: "Route", name: "r1", value: json("r1"))
            _ = try await store.create(kind: "Backend", name: "b1", value: json("b1"))
            let stream = try await store.watch(kind: "Route", fromRevision: base)
            _ = try await store.create(kind: "Backend", name: "b2", value: json("b2"))
            _ = try await store.create(kind: "RouteSet", name: "s", value: json("s"))
            _ = try await store.update(kind: "Route", name: "r1", value: json("r1b"), expectedRevision: base + 1)
            _ = try await store.delete(kind: "Backend", name: "b1", expectedRevision: nil)
            _ = try await store.delete(kind: "Route", name: "r1", expectedRevision: nil)
            let events = try await collect(stream, count: 3)
            #expect(events.map(\.revision) == [base + 1, base + 5, base + 7])
            #expect(events.map(\.type) == [.added, .modified, .deleted])
            #expect(events.allSatisfy { $0.object.kind == "Route" })
            #expect(events.last?.object.value == json("r1b"))
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func watchFromTheCurrentRevisionSeesOnlyNewEvents(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            _ = try await store.create(kind: "Route", name: "old", value: json("old"))
            let listed = try await store.list(kind: "Route")
            let stream = try await store.watch(kind: "Route", fromRevision: listed.revision)
            _ = try await store.create(kind: "Route", name: "new", value: json("new"))
            let events = try await collect(stream, count: 1)
            #expect(events.map(\.object.name) == ["new"])
            #expect(events.first?.revision == base + 2)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func compactionDropsOldHistoryButNotLiveState(backend: StoreBackend) async throws {
        try await backend.withStore { store, base in
            for index in 1...10 {
                _ = try await store.create(kind: "Route", name: "r\(index)", value: json("\(index)"))
            }
            #expect(try await store.compact(keepingRevisions: 3) == base + 7)
            #expect(try await store.compactedRevision() == base + 7)

            let error = try await storeError { try await store.watch(kind: nil, fromRevision: base + 6) }
            #expect(error?.code == .compacted)
            #expect(error?.currentRevision == base + 7)
            let filtered = try await storeError { try await store.watch(kind: "Route", fromRevision: base) }
            #expect(filtered?.code == .compacted)

            let events = try await collect(try await store.watch(kind: nil, fromRevision: base + 7), count: 3)
            #expect(events.map(\.revision) == [base + 8, base + 9, base + 10])
            #expect(try await store.list(kind: "Route").objects.count == 10)
            #expect(try await store.get(kind: "Route", name: "r1")?.modRevision == base + 1)

            // Compaction never moves backwards, and keeping nothing compacts up to the current revision.
            #expect(try await store.compact(keepingRevisions: 100) == base + 7)
            #expect(try await store.compact(keepingRevisions: 0) == base + 10)
            #expect(try await store.list(kind: nil).objects.count == 10)
            let live = try await store.watch(kind: nil, fromRevision: base + 10)
            _ = try await store.update(kind: "Route", name: "r1", value: json("again"), expectedRevision: base + 1)
            #expect(try await collect(live, count: 1).map(\.revision) == [base + 11])
        }
    }

    @Test(arguments: StoreBackend.allCases) func closingEndsWatchesAndRejectsCalls(backend: StoreBackend) async throws {
        try await backend.withStore { store, _ in
            _ = try await store.create(kind: "Route", name: "a", value: json("a"))
            let stream = try await store.watch(kind: nil, fromRevision: 0)
            var iterator = stream.makeAsyncIterator()
            #expect(try await iterator.next()?.object.name == "a")
            store.close()
            var failure: (any Error)?
            do {
                while try await iterator.next() != nil {}
            } catch {
                failure = error
            }
            #expect((failure as? StoreError)?.code == .unavailable)
            #expect(
                try await storeError { try await store.create(kind: "Route", name: "b", value: json("b")) }?.code
                    == .unavailable
            )
            #expect(try await storeError { try await store.get(kind: "Route", name: "a") }?.code == .unavailable)
        }
    }
}

// MARK: - Helpers

private func json(_ text: String) -> Data {
    StoreTestSupport.json(text)
}

private func storeError<T>(_ body: () async throws -> T) async throws -> StoreError? {
    try await StoreTestSupport.storeError(body)
}

private func collect(
    _ stream: AsyncThrowingStream<StoreEvent, any Error>, count: Int, timeout: Duration = .seconds(20)
) async throws -> [StoreEvent] {
    try await StoreTestSupport.collect(stream, count: count, timeout: timeout)
}

private func collect(
    _ stream: AsyncThrowingStream<StoreEvent, any Error>, through revision: Int64, timeout: Duration = .seconds(20)
) async throws -> [StoreEvent] {
    try await StoreTestSupport.collect(stream, through: revision, timeout: timeout)
}
