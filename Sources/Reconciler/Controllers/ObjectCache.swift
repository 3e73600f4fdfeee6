import Foundation
import Resources
import Synchronization

/// Identifies an object by kind and name: what the work queue holds and what references point at.
public struct ObjectKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The object's kind, e.g. "Route".
    public var kind: String
    /// The object's name.
    public var name: String

    /// Creates a key.
    public init(kind: String, name: String) {
        self.kind = kind
        self.name = name
    }

    /// `Kind/name`, e.g. `Route/critical`.
    public var description: String { "\(kind)/\(name)" }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        (lhs.kind, lhs.name) < (rhs.kind, rhs.name)
    }
}

/// One change the cache applied: the object before and after (nil when absent).
public struct ObjectChange: Sendable, Equatable {
    /// The object that changed.
    public var key: ObjectKey
    /// Its value before the change; nil when it was added.
    public var old: JSONValue?
    /// Its value after the change; nil when it was deleted.
    public var new: JSONValue?

    /// Creates a change.
    public init(key: ObjectKey, old: JSONValue?, new: JSONValue?) {
        self.key = key
        self.old = old
        self.new = new
    }
}

/// The informer's in-memory copy of the watched kinds, with a reverse index of references.
///
/// Reads are cheap and never touch the store; the cache lags the store by the watch's latency. It holds Secrets
/// whole, since the agent gateway puts their values in the slices of the runners that need them; it lives in the
/// controller's memory only and is never served.
///
/// Each object may refer to others (a Route to its Actions and Template, an Action to its Secrets); the cache
/// keeps, for every referenced key, the set of objects referring to it, whether or not the referenced object
/// exists, so that `referrers(of:)` finds what a create or delete affects without scanning every object.
public final class ObjectCache: Sendable {
    /// A cached object and the revision of its last write.
    public struct Entry: Sendable, Equatable {
        /// The object's JSON, without `metadata.resourceVersion`; Secret values are blanked.
        public var value: JSONValue
        /// The object's modRevision (its resourceVersion).
        public var revision: Int64
    }

    /// Extracts what an object refers to.
    public typealias ReferenceExtractor = @Sendable (_ kind: String, _ value: JSONValue) -> [ObjectKey]

    private struct State {
        var objects: [String: [String: Entry]] = [:]
        var references: [ObjectKey: [ObjectKey]] = [:]
        var referrers: [ObjectKey: Set<ObjectKey>] = [:]
        var versions: [String: Int] = [:]
        var revision: Int64 = 0
        var hasSynced = false

        /// Stores or removes one entry and keeps the reverse index in step.
        mutating func store(_ key: ObjectKey, entry: Entry?, references newReferences: [ObjectKey]) {
            let old = objects[key.kind]?[key.name]
            // Status writes (thousands of Runners reporting) must not invalidate what depends on names and labels.
            if (old == nil) != (entry == nil)
                || old?.value["metadata"]?["labels"] != entry?.value["metadata"]?["labels"]
            {
                versions[key.kind, default: 0] += 1
            }
            for reference in references[key] ?? [] {
                referrers[reference]?.remove(key)
                if referrers[reference]?.isEmpty == true { referrers[reference] = nil }
            }
            if let entry {
                objects[key.kind, default: [:]][key.name] = entry
                references[key] = newReferences.isEmpty ? nil : newReferences
                for reference in newReferences { referrers[reference, default: []].insert(key) }
            } else {
                objects[key.kind]?[key.name] = nil
                references[key] = nil
            }
        }
    }

    /// The kinds the cache holds; objects of other kinds are ignored.
    public let kinds: Set<String>
    private let referencesOf: ReferenceExtractor
    private let state = Mutex(State())

    /// Creates an empty cache for `kinds`, indexing references with `references`.
    public init(kinds: Set<String>, references: @escaping ReferenceExtractor = { _, _ in [] }) {
        self.kinds = kinds
        self.referencesOf = references
    }

    // MARK: Reading

    /// The object of that kind and name, or nil.
    public func get(kind: String, name: String) -> JSONValue? {
        state.withLock { $0.objects[kind]?[name]?.value }
    }

    /// The cached entry (value and revision) of that kind and name, or nil.
    public func entry(kind: String, name: String) -> Entry? {
        state.withLock { $0.objects[kind]?[name] }
    }

    /// True when an object of that kind and name is cached.
    public func contains(kind: String, name: String) -> Bool {
        state.withLock { $0.objects[kind]?[name] != nil }
    }

    /// Every object of one kind, by name. Copies the references; prefer `get` or `withEntries` on hot paths.
    public func objects(kind: String) -> [String: JSONValue] {
        state.withLock { $0.objects[kind]?.mapValues(\.value) ?? [:] }
    }

    /// The names of the objects of one kind, sorted.
    public func names(kind: String) -> [String] {
        state.withLock { $0.objects[kind].map { Array($0.keys) } ?? [] }.sorted()
    }

    /// The number of objects of one kind.
    public func count(kind: String) -> Int {
        state.withLock { $0.objects[kind]?.count ?? 0 }
    }

    /// Runs `body` over the entries of one kind while holding the cache's lock: keep it short and do not call
    /// back into the cache.
    public func withEntries<Result>(kind: String, _ body: ([String: Entry]) -> Result) -> Result {
        state.withLock { body($0.objects[kind] ?? [:]) }
    }

    /// The objects whose references include `key`, whether or not `key` exists.
    public func referrers(of key: ObjectKey) -> Set<ObjectKey> {
        state.withLock { $0.referrers[key] ?? [] }
    }

    /// What the cached object `key` refers to.
    public func references(of key: ObjectKey) -> [ObjectKey] {
        state.withLock { $0.references[key] ?? [] }
    }

    /// A counter that changes whenever an object of `kind` is added or deleted or its labels change; for memoizing
    /// what depends on which objects exist and how they are labelled.
    public func version(of kind: String) -> Int {
        state.withLock { $0.versions[kind, default: 0] }
    }

    /// The store revision the cache reflects.
    public var revision: Int64 {
        state.withLock { $0.revision }
    }

    /// True once the first list has been applied.
    public var hasSynced: Bool {
        state.withLock { $0.hasSynced }
    }

    // MARK: Updating (the informer)

    /// Applies one watch event; returns the change, or nil when it changes nothing the cache holds (other kinds
    /// only advance `revision`).
    func apply(_ event: StoreEvent) throws -> ObjectChange? {
        let kind = event.object.kind
        guard kinds.contains(kind) else {
            state.withLock { $0.revision = max($0.revision, event.revision) }
            return nil
        }
        let key = ObjectKey(kind: kind, name: event.object.name)
        var new: Entry?
        var newReferences: [ObjectKey] = []
        if event.type != .deleted {
            let value = try JSONValue.parse(event.object.value)
            new = Entry(value: value, revision: event.object.modRevision)
            newReferences = referencesOf(kind, value)
        }
        return state.withLock { state -> ObjectChange? in
            state.revision = max(state.revision, event.revision)
            let old = state.objects[kind]?[key.name]
            if let old, old.revision >= event.revision { return nil }
            if old == nil && new == nil { return nil }
            state.store(key, entry: new, references: newReferences)
            return ObjectChange(key: key, old: old?.value, new: new?.value)
        }
    }

    /// Replaces the whole content with a fresh list taken at `revision`; returns what differs from before, and
    /// the keys of objects that could not be parsed (left out of the cache).
    ///
    /// Objects whose revision did not change are not parsed again. Every change is applied before this returns,
    /// so handlers see a consistent cache when they run.
    func replace(with objects: [StoredObject], revision: Int64) -> (changes: [ObjectChange], unreadable: [ObjectKey]) {
        let current = state.withLock { state in
            state.objects.mapValues { $0.mapValues(\.revision) }
        }
        var listed: [ObjectKey: (entry: Entry, references: [ObjectKey])] = [:]
        var unchanged: Set<ObjectKey> = []
        var unreadable: [ObjectKey] = []
        for object in objects where kinds.contains(object.kind) {
            let key = ObjectKey(kind: object.kind, name: object.name)
            if current[object.kind]?[object.name] == object.modRevision {
                unchanged.insert(key)
                continue
            }
            guard let parsed = try? JSONValue.parse(object.value) else {
                unreadable.append(key)
                continue
            }
            let value = parsed
            listed[key] = (Entry(value: value, revision: object.modRevision), referencesOf(object.kind, value))
        }
        return state.withLock { state in
            var changes: [ObjectChange] = []
            var removed: [ObjectKey] = []
            for (kind, entries) in state.objects {
                for name in entries.keys {
                    let key = ObjectKey(kind: kind, name: name)
                    if !unchanged.contains(key) && listed[key] == nil { removed.append(key) }
                }
            }
            for key in removed {
                let old = state.objects[key.kind]?[key.name]
                state.store(key, entry: nil, references: [])
                changes.append(ObjectChange(key: key, old: old?.value, new: nil))
            }
            for (key, item) in listed {
                let old = state.objects[key.kind]?[key.name]
                state.store(key, entry: item.entry, references: item.references)
                changes.append(ObjectChange(key: key, old: old?.value, new: item.entry.value))
            }
            state.revision = max(state.revision, revision)
            state.hasSynced = true
            return (changes, unreadable)
        }
    }

    /// The whole content as one update of additions, for a subscriber that joins after the first list.
    func contentAsUpdate() -> InformerUpdate {
        state.withLock { state in
            var changes: [ObjectChange] = []
            for (kind, entries) in state.objects {
                for (name, entry) in entries {
                    changes.append(ObjectChange(key: ObjectKey(kind: kind, name: name), old: nil, new: entry.value))
                }
            }
            return InformerUpdate(changes: changes, revision: state.revision)
        }
    }
}
