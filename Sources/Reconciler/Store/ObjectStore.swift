import Foundation

/// One stored object as the store sees it: its identity, its opaque JSON bytes and its revisions.
public struct StoredObject: Sendable, Equatable {
    /// The object's kind, e.g. "Route".
    public var kind: String
    /// The object's name, unique within its kind.
    public var name: String
    /// The object's JSON bytes; the store never looks inside them.
    public var value: Data
    /// The revision of the write that created the object.
    public var createRevision: Int64
    /// The revision of the object's last write; this is the object's resourceVersion.
    public var modRevision: Int64

    /// Creates a stored object from its parts.
    public init(kind: String, name: String, value: Data, createRevision: Int64, modRevision: Int64) {
        self.kind = kind
        self.name = name
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
    }
}

/// One committed change, as delivered by `ObjectStore.watch`.
public struct StoreEvent: Sendable, Equatable {
    /// The kind of change, spelled as in Kubernetes watch events.
    public enum EventType: String, Sendable {
        case added = "ADDED"
        case modified = "MODIFIED"
        case deleted = "DELETED"
    }

    /// What happened to the object.
    public var type: EventType
    /// The object after the change; for `deleted`, its last value with `modRevision` set to the delete's revision.
    public var object: StoredObject
    /// The revision of the change; equal to `object.modRevision`.
    public var revision: Int64

    /// Creates an event from its parts.
    public init(type: EventType, object: StoredObject, revision: Int64) {
        self.type = type
        self.object = object
        self.revision = revision
    }
}

/// An error reported by an `ObjectStore`, identified by a stable code.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// A stable, extensible error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, e.g. "NotFound".
        public let rawValue: String

        /// Creates a code; prefer the static constants.
        public init(_ rawValue: String) {
            self.rawValue = rawValue
        }

        /// The object does not exist.
        public static let notFound = Code("NotFound")
        /// An object with that kind and name already exists.
        public static let alreadyExists = Code("AlreadyExists")
        /// The expected revision does not match the object's current modRevision.
        public static let conflict = Code("Conflict")
        /// The requested history has been compacted away.
        public static let compacted = Code("Compacted")
        /// The store cannot serve the request: an SQLite failure, a closed store, or a watcher that fell behind.
        public static let unavailable = Code("Unavailable")

        /// The code's name.
        public var description: String { rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// A human-readable explanation.
    public var message: String
    /// For `conflict`, the object's current modRevision; for `compacted`, the compacted revision.
    public var currentRevision: Int64?

    /// Creates an error from its parts.
    public init(code: Code, message: String, currentRevision: Int64? = nil) {
        self.code = code
        self.message = message
        self.currentRevision = currentRevision
    }

    /// The code and message, with the revision when there is one.
    public var description: String {
        if let currentRevision {
            return "\(code): \(message) (revision \(currentRevision))"
        }
        return "\(code): \(message)"
    }
}

/// A revisioned key-value store of objects keyed by kind and name, in the manner of etcd.
///
/// A single global revision counter, shared by all kinds, increases by one with every successful
/// create, update or delete; an object's `modRevision` is its resourceVersion.
public protocol ObjectStore: Sendable {
    /// The revision of the newest committed write, or 0 for an empty store.
    func currentRevision() async throws -> Int64

    /// The live object with that kind and name, or nil.
    func get(kind: String, name: String) async throws -> StoredObject?

    /// All live objects of one kind (or every kind when nil), sorted by name, and the revision they were read at.
    func list(kind: String?) async throws -> (objects: [StoredObject], revision: Int64)

    /// Creates an object; fails with `alreadyExists` when the name is taken.
    func create(kind: String, name: String, value: Data) async throws -> StoredObject

    /// Compare-and-set: fails with conflict unless expectedRevision is nil or equals the current modRevision.
    ///
    /// Fails with `notFound` when the object does not exist.
    func update(kind: String, name: String, value: Data, expectedRevision: Int64?) async throws -> StoredObject

    /// Deletes an object, with the same compare-and-set rule as `update`; returns its last value.
    ///
    /// The returned object's `modRevision` is the delete's revision. Fails with `notFound` or `conflict`.
    func delete(kind: String, name: String, expectedRevision: Int64?) async throws -> StoredObject

    /// Events with revision > fromRevision for one kind (or all), oldest first, then live events as they commit.
    ///
    /// The stream never has a gap nor a duplicate. Throws `StoreError.compacted` (immediately, before returning)
    /// when fromRevision < compactedRevision. The stream ends with an `unavailable` error when the watcher falls
    /// too far behind or the store closes; the caller should then re-list.
    func watch(kind: String?, fromRevision: Int64) async throws -> AsyncThrowingStream<StoreEvent, any Error>

    /// Drops history older than the newest `keep` revisions; returns the new compacted revision.
    func compact(keepingRevisions keep: Int64) async throws -> Int64

    /// The revision up to which history has been dropped; watches must start at or after it.
    func compactedRevision() async throws -> Int64

    /// Releases the store's connections: open watches end with `unavailable`, and so does every later call.
    func close()
}

extension ObjectStore {
    /// Nothing to release by default.
    public func close() {}
}
