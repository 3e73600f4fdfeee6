import Resources

/// The configuration an agent holds: the objects of its slice, the slice revision and their digest.
///
/// A value: applying a message builds a new one, which is swapped in whole.
public struct RunnerSlice: Sendable, Equatable {
    /// The slice revision the controller gave these objects.
    public var revision: Int64
    /// `SliceDigest.digest(of:)` of ``objects``.
    public private(set) var digest: String
    /// The objects, by kind and name, as the controller sent them.
    public private(set) var objects: [SliceKey: JSONValue]

    /// Creates a slice and computes its digest.
    public init(revision: Int64, objects: [SliceKey: JSONValue]) {
        self.revision = revision
        self.objects = objects
        self.digest = SliceDigest.digest(of: RunnerSlice.sorted(objects))
    }

    /// Creates a slice from a list of objects (the last one wins for a repeated key).
    public init(revision: Int64, objects: [SliceObject]) {
        var byKey: [SliceKey: JSONValue] = [:]
        for object in objects { byKey[object.key] = object.object }
        self.init(revision: revision, objects: byKey)
    }

    /// A slice with nothing in it, at revision 0: what an agent holds before its first slice.
    public static let empty = RunnerSlice(revision: 0, objects: [SliceKey: JSONValue]())

    /// The objects sorted by kind and name, as the digest covers them.
    public var sliceObjects: [SliceObject] { RunnerSlice.sorted(objects) }

    /// The names of the objects of one kind, sorted.
    public func names(ofKind kind: String) -> [String] {
        objects.keys.filter { $0.kind == kind }.map(\.name).sorted()
    }

    /// The object of a kind and name, when the slice holds it.
    public subscript(kind: String, name: String) -> JSONValue? {
        objects[SliceKey(kind: kind, name: name)]
    }

    /// The `spec.schedule` of `runner`'s own Runner, when the slice holds it (the controller sends it only to a
    /// runner that has a schedule); nil when it does not, or when it does not decode (the validator admitted it).
    public func schedule(of runner: String) -> RunnerSpec.Schedule? {
        guard let schedule = self[RunnerSpec.kind, runner]?["spec"]?["schedule"], schedule != .null else { return nil }
        return try? schedule.decode(as: RunnerSpec.Schedule.self)
    }

    /// This slice with `upserts` added or replaced and `removed` deleted, at `revision`.
    public func applying(upserts: [SliceObject], removed: [SliceKey], revision: Int64) -> RunnerSlice {
        var objects = self.objects
        for key in removed { objects[key] = nil }
        for object in upserts { objects[object.key] = object.object }
        return RunnerSlice(revision: revision, objects: objects)
    }

    static func sorted(_ objects: [SliceKey: JSONValue]) -> [SliceObject] {
        objects.sorted { $0.key < $1.key }.map { SliceObject(kind: $0.key.kind, name: $0.key.name, object: $0.value) }
    }
}
