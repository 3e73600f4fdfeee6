/// The desired state of one kind: what `spec` holds, and the status the controller reports for it.
public protocol ResourceSpec: Codable, Sendable, Equatable {
    associatedtype Status: ResourceStatus
    static var kind: String { get }
    static var plural: String { get }
    static var shortNames: [String] { get }
    /// Whether an object may omit `spec` entirely (a Runner needs nothing but a name and labels).
    static var isSpecOptional: Bool { get }
    /// Checks beyond types (names, expressions, exclusive fields), with paths relative to `spec`.
    func validate() -> [FieldError]
}

extension ResourceSpec {
    public static var shortNames: [String] { [] }
    public static var isSpecOptional: Bool { false }
    public func validate() -> [FieldError] { [] }
}

/// The status every kind carries: what the controller saw last, and its conditions.
public protocol ResourceStatus: Codable, Sendable, Equatable {
    var observedGeneration: Int64? { get set }
    var conditions: [Condition]? { get set }
    init()
}

/// The API group and version of every kind.
public enum API {
    public static let group = "steady.dev"
    public static let version = "v1"
    public static let apiVersion = "steady.dev/v1"
}

/// A typed object of one kind: `apiVersion`, `kind`, `metadata`, `spec` and `status`.
public struct Resource<Spec: ResourceSpec>: Codable, Sendable, Equatable {
    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Spec.Status?

    public init(metadata: ObjectMeta, spec: Spec, status: Spec.Status? = nil) {
        self.apiVersion = API.apiVersion
        self.kind = Spec.kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, spec, status }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try container.decode(String.self, forKey: .apiVersion)
        kind = try container.decode(String.self, forKey: .kind)
        metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        if Spec.isSpecOptional, let spec = try container.decodeIfPresent(Spec.self, forKey: .spec) {
            self.spec = spec
        } else if Spec.isSpecOptional {
            self.spec = try StrictDecoder().decode(Spec.self, from: .object([:]))
        } else {
            spec = try container.decode(Spec.self, forKey: .spec)
        }
        status = try container.decodeIfPresent(Spec.Status.self, forKey: .status)
    }

    public var name: String { metadata.name }
    public var generation: Int64 { metadata.generation ?? 0 }
    public var labels: [String: String] { metadata.labels ?? [:] }
}

public typealias Runner = Resource<RunnerSpec>
public typealias Assignment = Resource<AssignmentSpec>
public typealias Route = Resource<RouteSpec>
public typealias Action = Resource<ActionSpec>
public typealias Template = Resource<TemplateSpec>
public typealias RemoteRun = Resource<RemoteRunSpec>
public typealias GitRepository = Resource<GitRepositorySpec>

/// A reference to one key of a Secret.
public struct SecretKeySelector: Codable, Sendable, Hashable {
    public var name: String
    public var key: String

    public init(name: String, key: String) {
        self.name = name
        self.key = key
    }
}

/// Where a value comes from when it is not written inline.
public struct ValueSource: Codable, Sendable, Hashable {
    public var secretKeyRef: SecretKeySelector

    public init(secretKeyRef: SecretKeySelector) { self.secretKeyRef = secretKeyRef }
}

/// A reference to an object by name.
public struct LocalObjectReference: Codable, Sendable, Hashable {
    public var name: String
}

/// Checks a list of object names (e.g. `spec.actions`) for validity and duplicates.
func validateNameList(_ names: [String]?, at path: String) -> [FieldError] {
    var errors: [FieldError] = []
    var seen: Set<String> = []
    for (index, name) in (names ?? []).enumerated() {
        let here = "\(path)[\(index)]"
        errors += Names.validateObjectName(name, at: here)
        if !seen.insert(name).inserted {
            errors.append(FieldError(path: here, reason: .duplicate, message: "duplicate name \"\(name)\""))
        }
    }
    return errors
}
