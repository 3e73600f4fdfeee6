/// A Git repository whose manifests the controller applies on an interval.
public struct GitRepositorySpec: ResourceSpec, FieldDocumented {
    public struct Reference: Codable, Sendable, Equatable {
        public var branch: String?
        public var tag: String?
        public var commit: String?
    }

    public struct InventoryEntry: Codable, Sendable, Hashable {
        public var kind: String
        public var name: String

        public init(kind: String, name: String) {
            self.kind = kind
            self.name = name
        }
    }

    public struct Status: ResourceStatus {
        public var observedGeneration: Int64?
        public var conditions: [Condition]?
        public var lastAppliedRevision: String?
        public var lastAttemptedRevision: String?
        public var inventory: [InventoryEntry]?
        public init() {}
    }

    public static let kind = "GitRepository"
    public static let plural = "gitrepositories"
    public static let shortNames = ["gitrepo"]

    public var url: String
    public var ref: Reference?
    public var path: String?
    public var interval: DurationString?
    public var prune: Bool?
    public var suspend: Bool?
    public var secretRef: LocalObjectReference?

    public func validate() -> [FieldError] {
        var errors: [FieldError] = []
        let schemes = ["https://", "http://", "ssh://", "git@", "file://"]
        if !schemes.contains(where: url.hasPrefix) {
            errors.append(FieldError(path: "url", message: "must be an https://, ssh://, git@ or file:// URL"))
        }
        if let ref, [ref.branch, ref.tag, ref.commit].compactMap({ $0 }).count > 1 {
            errors.append(FieldError(path: "ref", message: "set one of branch, tag or commit"))
        }
        if let path, path.split(separator: "/").contains("..") {
            errors.append(FieldError(path: "path", message: "must stay inside the repository (no '..')"))
        }
        return errors
    }

    public static let fieldDescriptions = [
        "url": "The repository to fetch.",
        "ref": "branch, tag or commit; the default branch when empty.",
        "path": "Directory of manifests inside the repository.",
        "interval": "How often to fetch.",
        "prune": "Delete objects whose manifests were removed.",
        "suspend": "Stop fetching and applying.",
    ]
}
