import Foundation

/// Where steady keeps things in etcd, below one prefix (`--store-prefix`, `/steady` by default):
///
/// | key | holds |
/// | --- | --- |
/// | `<prefix>/objects/<kind>/<name>` | one object's JSON |
/// | `<prefix>/identity` | the cluster identity (CA, admin token), created once |
/// | `<prefix>/leader` | the leader election's key, bound to the leader's lease |
///
/// A kind's range ends with `/`, so `Route` never lists `RouteSet`.
public struct EtcdKeys: Sendable, Equatable {
    /// The prefix without a trailing slash.
    public let prefix: String

    /// Keys below `prefix`; a trailing slash is dropped and a missing leading one added.
    public init(prefix: String) {
        var prefix = prefix
        while prefix.hasSuffix("/") { prefix.removeLast() }
        if !prefix.hasPrefix("/") { prefix = "/" + prefix }
        self.prefix = prefix
    }

    /// The key of one object.
    public func object(kind: String, name: String) -> Data {
        Data("\(prefix)/objects/\(kind)/\(name)".utf8)
    }

    /// The range `[start, end)` of one kind's objects, or of every object when `kind` is nil.
    public func objects(kind: String?) -> (start: Data, end: Data) {
        let start = Data((kind.map { "\(prefix)/objects/\($0)/" } ?? "\(prefix)/objects/").utf8)
        return (start, Self.rangeEnd(ofPrefix: start))
    }

    /// The cluster identity's key.
    public var identity: Data { Data("\(prefix)/identity".utf8) }

    /// The leader election's key.
    public var leader: Data { Data("\(prefix)/leader".utf8) }

    /// The kind and name encoded in an object key, or nil for a key outside `<prefix>/objects/`.
    public func kindAndName(of key: Data) -> (kind: String, name: String)? {
        let objects = Data("\(prefix)/objects/".utf8)
        guard key.starts(with: objects) else { return nil }
        let rest = key.dropFirst(objects.count)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")),
            let kind = String(data: rest[rest.startIndex..<slash], encoding: .utf8),
            let name = String(data: rest[rest.index(after: slash)...], encoding: .utf8)
        else { return nil }
        return (kind, name)
    }

    /// The smallest key greater than every key that starts with `prefix`, as etcd's clients compute it.
    static func rangeEnd(ofPrefix prefix: Data) -> Data {
        var bytes = [UInt8](prefix)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes)
            }
            bytes.removeLast()
        }
        // Every byte was 0xFF: the range runs to the end of the keyspace.
        return Data([0])
    }
}
