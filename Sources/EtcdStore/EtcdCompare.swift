import Foundation

/// One comparison of an etcd transaction on a key's create or mod revision.
struct EtcdCompare: Sendable {
    var key: Data
    var target: Etcdserverpb_Compare.CompareTarget
    var revision: Int64
    var result: Etcdserverpb_Compare.CompareResult = .equal

    var message: Etcdserverpb_Compare {
        var compare = Etcdserverpb_Compare()
        compare.key = key
        compare.target = target
        compare.result = result
        switch target {
        case .mod: compare.modRevision = revision
        default: compare.createRevision = revision
        }
        return compare
    }
}

/// One operation of an etcd transaction.
enum EtcdOperation: Sendable {
    case get(key: Data)
    case put(key: Data, value: Data, previous: Bool, lease: Int64 = 0)
    case delete(key: Data)

    var message: Etcdserverpb_RequestOp {
        var operation = Etcdserverpb_RequestOp()
        switch self {
        case .get(let key):
            var range = Etcdserverpb_RangeRequest()
            range.key = key
            operation.requestRange = range
        case .put(let key, let value, let previous, let lease):
            var put = Etcdserverpb_PutRequest()
            put.key = key
            put.value = value
            put.prevKv = previous
            put.lease = lease
            operation.requestPut = put
        case .delete(let key):
            var delete = Etcdserverpb_DeleteRangeRequest()
            delete.key = key
            delete.prevKv = true
            operation.requestDeleteRange = delete
        }
        return operation
    }
}

/// The leader's fence: its election key still has the create revision it had when this leader won.
///
/// Any later leader's key has a newer create revision, so a write that carries this comparison fails as soon as the
/// lease behind it has expired, whatever the old leader's clock says.
public struct EtcdFence: Sendable, Equatable {
    /// The election key.
    public var key: Data
    /// Its create revision when this controller won the election.
    public var createRevision: Int64

    public init(key: Data, createRevision: Int64) {
        self.key = key
        self.createRevision = createRevision
    }

    var compare: EtcdCompare { EtcdCompare(key: key, target: .create, revision: createRevision) }
}
