import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Reconciler
import Synchronization

/// An `ObjectStore` kept in etcd, so that several controllers share one store, in the manner of Kubernetes.
///
/// - One global revision: etcd's own. An empty etcd is at revision 1, not 0.
/// - Compare-and-set: creates and updates are transactions on the key's create and mod revisions.
/// - Watches start at a revision and map etcd's compacted revision to `StoreError.compacted` (410 Gone); a watch
///   whose connection drops resumes from the last revision it delivered.
/// - Lists read every page at the revision of the first one.
/// - Compaction is etcd's, and so applies to the whole etcd keyspace, not only to this prefix.
///
/// A fenced view (``fenced(by:)``) adds the leader's fence to every write, so a controller that lost its lease
/// cannot write.
public final class EtcdStore: ObjectStore {
    typealias Transport = HTTP2ClientTransport.Posix

    /// The keys below the configured prefix.
    public let keys: EtcdKeys
    let connection: EtcdConnection
    /// Comparisons every write must also pass; empty for an unfenced store.
    let fence: EtcdFence?
    private let watchBufferSize: Int
    /// Each list page holds at most this many objects.
    private let pageSize: Int64 = 1_000

    private init(connection: EtcdConnection, keys: EtcdKeys, fence: EtcdFence?, watchBufferSize: Int) {
        self.connection = connection
        self.keys = keys
        self.fence = fence
        self.watchBufferSize = watchBufferSize
    }

    /// Connects to etcd and waits (up to `timeout`) for its first answer, so a wrong address fails at start.
    public static func connect(
        configuration: EtcdConfiguration, timeout: Duration = .seconds(30)
    ) async throws -> EtcdStore {
        let connection = try EtcdConnection(configuration: configuration)
        let store = EtcdStore(
            connection: connection, keys: EtcdKeys(prefix: configuration.prefix), fence: nil,
            watchBufferSize: configuration.watchBufferSize)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        let endpoints = configuration.endpoints.joined(separator: ",")
        let tlsHint =
            "check that --etcd-cacert is the CA that signed etcd's serving certificate, and that --etcd-cert and "
            + "--etcd-key are a client certificate that etcd's --trusted-ca-file signed (etcd --client-cert-auth)"
        while true {
            // A TLS failure is not mended by waiting: say so at once.
            if configuration.caCertificate != nil, let failure = await connection.probeTLSFailure() {
                store.close()
                throw StoreError(
                    code: .unavailable, message: "etcd at \(endpoints) refused the TLS connection (\(failure)); \(tlsHint)")
            }
            do {
                _ = try await store.currentRevision()
                return store
            } catch {
                guard clock.now < deadline else {
                    store.close()
                    throw StoreError(
                        code: .unavailable,
                        message: "etcd at \(endpoints) did not answer within \(timeout): \(error); check --store and that "
                            + "etcd is running" + (configuration.caCertificate == nil ? "" : "; over TLS, \(tlsHint)"))
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// A view of the same store whose writes all also require `fence` to hold (see ``EtcdFence``).
    public func fenced(by fence: EtcdFence) -> EtcdStore {
        EtcdStore(connection: connection, keys: keys, fence: fence, watchBufferSize: watchBufferSize)
    }

    /// Ends every watch and stops the connections; every later call fails with `unavailable`.
    public func close() {
        connection.close()
    }

    // MARK: - Reads

    /// The revision etcd is at.
    public func currentRevision() async throws -> Int64 {
        try await range(key: keys.identity, end: nil, revision: 0, countOnly: true).header.revision
    }

    /// The live object with that kind and name, or nil.
    public func get(kind: String, name: String) async throws -> StoredObject? {
        let response = try await range(key: keys.object(kind: kind, name: name), end: nil, revision: 0)
        return response.kvs.first.flatMap(object(from:))
    }

    /// Every live object of one kind (or all), sorted by kind and name, read page by page at one revision.
    public func list(kind: String?) async throws -> (objects: [StoredObject], revision: Int64) {
        let range = keys.objects(kind: kind)
        var attempt = 0
        while true {
            do {
                return try await list(range: range)
            } catch let error as StoreError where error.code == .compacted && attempt < 3 {
                // The revision of the first page was compacted away under a long list: start again at the newest.
                attempt += 1
            }
        }
    }

    private func list(range: (start: Data, end: Data)) async throws -> (objects: [StoredObject], revision: Int64) {
        var objects: [StoredObject] = []
        var revision: Int64 = 0
        var start = range.start
        while true {
            let page = try await self.range(key: start, end: range.end, revision: revision, limit: pageSize)
            if revision == 0 { revision = page.header.revision }
            objects.append(contentsOf: page.kvs.compactMap(object(from:)))
            guard page.more, let last = page.kvs.last else { return (objects, revision) }
            start = last.key + Data([0])
        }
    }

    // MARK: - Writes

    /// Creates the object unless its key exists: a transaction on the key's create revision being 0.
    public func create(kind: String, name: String, value: Data) async throws -> StoredObject {
        let key = keys.object(kind: kind, name: name)
        let response = try await transaction(
            key: key, compare: [.init(key: key, target: .create, revision: 0)],
            success: [.put(key: key, value: value, previous: false)])
        guard response.succeeded else {
            throw StoreError(code: .alreadyExists, message: "\(kind) \(name) already exists")
        }
        let revision = response.header.revision
        return StoredObject(kind: kind, name: name, value: value, createRevision: revision, modRevision: revision)
    }

    /// Replaces the object's value if it exists and, when `expectedRevision` is set, its mod revision matches.
    public func update(kind: String, name: String, value: Data, expectedRevision: Int64?) async throws -> StoredObject {
        let key = keys.object(kind: kind, name: name)
        let response = try await transaction(
            key: key, compare: [Self.precondition(key: key, expectedRevision: expectedRevision)],
            success: [.put(key: key, value: value, previous: true)])
        try Self.check(response, kind: kind, name: name, expectedRevision: expectedRevision)
        let previous = response.responses.first?.responsePut.prevKv
        return StoredObject(
            kind: kind, name: name, value: value, createRevision: previous?.createRevision ?? response.header.revision,
            modRevision: response.header.revision)
    }

    /// Deletes the object with the same rule as `update`; returns its last value at the delete's revision.
    public func delete(kind: String, name: String, expectedRevision: Int64?) async throws -> StoredObject {
        let key = keys.object(kind: kind, name: name)
        let response = try await transaction(
            key: key, compare: [Self.precondition(key: key, expectedRevision: expectedRevision)],
            success: [.delete(key: key)])
        try Self.check(response, kind: kind, name: name, expectedRevision: expectedRevision)
        guard let previous = response.responses.first?.responseDeleteRange.prevKvs.first else {
            throw StoreError(code: .notFound, message: "\(kind) \(name) not found")
        }
        return StoredObject(
            kind: kind, name: name, value: previous.value, createRevision: previous.createRevision,
            modRevision: response.header.revision)
    }

    /// The key exists, and has `expectedRevision` as its mod revision when one is given.
    private static func precondition(key: Data, expectedRevision: Int64?) -> EtcdCompare {
        if let expectedRevision {
            return EtcdCompare(key: key, target: .mod, revision: expectedRevision)
        }
        return EtcdCompare(key: key, target: .create, revision: 0, result: .greater)
    }

    /// Throws `notFound` or `conflict` for a transaction whose comparison failed.
    private static func check(
        _ response: Etcdserverpb_TxnResponse, kind: String, name: String, expectedRevision: Int64?
    ) throws {
        guard !response.succeeded else { return }
        guard let current = response.responses.first?.responseRange.kvs.first else {
            throw StoreError(code: .notFound, message: "\(kind) \(name) not found")
        }
        throw StoreError(
            code: .conflict,
            message: "\(kind) \(name) is at revision \(current.modRevision), not \(expectedRevision ?? 0); "
                + "read it again and retry",
            currentRevision: current.modRevision)
    }

    // MARK: - Watch

    /// Events after `fromRevision`, from etcd's history and then live; see `ObjectStore.watch`.
    ///
    /// Throws `compacted` before returning when `fromRevision` is older than etcd's compacted revision. When the
    /// connection to etcd drops, the watch resumes from its last event; it ends with `unavailable` when etcd stays
    /// away for a minute, when the consumer falls `watchBufferSize` events behind, or when the store closes.
    public func watch(kind: String?, fromRevision: Int64) async throws -> AsyncThrowingStream<StoreEvent, any Error> {
        let range = keys.objects(kind: kind)
        if fromRevision > 0 {
            do {
                _ = try await self.range(key: range.start, end: range.end, revision: fromRevision, countOnly: true)
            } catch let error as StoreError where error.code == .compacted {
                throw StoreError(
                    code: .compacted, message: "revision \(fromRevision) has been compacted; list again",
                    currentRevision: try await compactedRevision())
            } catch let error as StoreError where error.message.contains("future revision") {
                // A watch may start ahead of etcd's current revision; it then waits for the writes.
            }
        }
        return try connection.watch(
            range: range, after: fromRevision, bufferSize: watchBufferSize, convert: { [keys] in
                Self.event(from: $0, keys: keys)
            })
    }

    /// A store event for one etcd event, or nil for a key that is not an object.
    static func event(from event: Mvccpb_Event, keys: EtcdKeys) -> StoreEvent? {
        guard let (kind, name) = keys.kindAndName(of: event.kv.key) else { return nil }
        switch event.type {
        case .put:
            let object = StoredObject(
                kind: kind, name: name, value: event.kv.value, createRevision: event.kv.createRevision,
                modRevision: event.kv.modRevision)
            let type: StoreEvent.EventType = object.createRevision == object.modRevision ? .added : .modified
            return StoreEvent(type: type, object: object, revision: object.modRevision)
        case .delete:
            let object = StoredObject(
                kind: kind, name: name, value: event.prevKv.value, createRevision: event.prevKv.createRevision,
                modRevision: event.kv.modRevision)
            return StoreEvent(type: .deleted, object: object, revision: object.modRevision)
        default:
            return nil
        }
    }

    // MARK: - Compaction

    /// Compacts etcd up to `keep` revisions before the current one; never moves backwards.
    public func compact(keepingRevisions keep: Int64) async throws -> Int64 {
        let target = try await currentRevision() - max(keep, 0)
        let compacted = try await compactedRevision()
        guard target > compacted else { return compacted }
        var request = Etcdserverpb_CompactionRequest()
        request.revision = target
        do {
            _ = try await connection.call("compact") { try await $0.kv.compact(request, options: $1) }
        } catch let error as StoreError where error.code == .compacted {
            // Another controller compacted further meanwhile.
            return try await compactedRevision()
        }
        return target
    }

    /// etcd's compacted revision, found by reading at revisions (etcd refuses reads below it): O(log revision).
    public func compactedRevision() async throws -> Int64 {
        var low: Int64 = 1
        var high = try await currentRevision()
        while low < high {
            let middle = low + (high - low) / 2
            do {
                _ = try await range(key: keys.identity, end: nil, revision: middle, countOnly: true)
                high = middle
            } catch let error as StoreError where error.code == .compacted {
                low = middle + 1
            }
        }
        return low <= 1 ? 0 : low
    }

    // MARK: - Requests

    func range(
        key: Data, end: Data?, revision: Int64, limit: Int64 = 0, countOnly: Bool = false
    ) async throws -> Etcdserverpb_RangeResponse {
        var request = Etcdserverpb_RangeRequest()
        request.key = key
        if let end { request.rangeEnd = end }
        request.revision = revision
        request.limit = limit
        request.countOnly = countOnly
        return try await connection.call("range") { try await $0.kv.range(request, options: $1) }
    }

    /// Runs `success` if `compare` and the fence hold; otherwise reads `key` (and the fence's key).
    ///
    /// Throws `NotLeader` when the fence no longer holds, whatever `compare` did.
    func transaction(
        key: Data, compare: [EtcdCompare], success: [EtcdOperation]
    ) async throws -> Etcdserverpb_TxnResponse {
        var request = Etcdserverpb_TxnRequest()
        request.compare = (compare + (fence.map { [$0.compare] } ?? [])).map(\.message)
        request.success = success.map(\.message)
        request.failure = ([EtcdOperation.get(key: key)] + (fence.map { [EtcdOperation.get(key: $0.key)] } ?? []))
            .map(\.message)
        let response = try await connection.call("txn") { try await $0.kv.txn(request, options: $1) }
        if !response.succeeded, let fence, response.responses.count > 1,
            response.responses[1].responseRange.kvs.first?.createRevision != fence.createRevision
        {
            throw StoreError(
                code: .notLeader,
                message: "this controller no longer holds the leader lease (fence revision \(fence.createRevision))")
        }
        return response
    }

    private func object(from keyValue: Mvccpb_KeyValue) -> StoredObject? {
        guard let (kind, name) = keys.kindAndName(of: keyValue.key) else { return nil }
        return StoredObject(
            kind: kind, name: name, value: keyValue.value, createRevision: keyValue.createRevision,
            modRevision: keyValue.modRevision)
    }
}

extension StoreError.Code {
    /// A fenced write from a controller that is no longer the leader.
    public static let notLeader = StoreError.Code("NotLeader")
}

extension EtcdStore {
    /// The etcd endpoints this store talks to, for logs.
    public var connectionEndpoints: String { connection.endpoints }
}
