/// A Git repository whose manifests the controller applies on an interval.
public struct GitRepositorySpec: ResourceSpec, FieldDocumented {
    /// Which revision to follow: one of a branch, a tag, a semver range over tags, or a pinned commit.
    public struct Reference: Codable, Sendable, Equatable {
        public var branch: String?
        public var tag: String?
        /// A range such as `>=1.2.0 <2.0.0` or `1.x`: the highest tag that matches it.
        public var semver: String?
        public var commit: String?

        public init(branch: String? = nil, tag: String? = nil, semver: String? = nil, commit: String? = nil) {
            self.branch = branch
            self.tag = tag
            self.semver = semver
            self.commit = commit
        }
    }

    /// How webhooks for this repository are authenticated.
    public struct Webhook: Codable, Sendable, Equatable {
        /// The Secret whose `token` key signs or authenticates the webhook's requests.
        public var secretRef: LocalObjectReference
    }

    public struct InventoryEntry: Codable, Sendable, Hashable {
        public var kind: String
        public var name: String

        public init(kind: String, name: String) {
            self.kind = kind
            self.name = name
        }
    }

    /// An object of this source's inventory that another source declares too. This source keeps it (it applied
    /// it first); the other one reports `OwnershipConflict` and applies the rest.
    public struct Conflict: Codable, Sendable, Hashable {
        public var kind: String
        public var name: String
        /// The GitRepository that also declares the object.
        public var source: String

        public init(kind: String, name: String, source: String) {
            self.kind = kind
            self.name = name
            self.source = source
        }
    }

    /// What was fetched last.
    public struct Artifact: Codable, Sendable, Equatable {
        /// `main@sha1:<sha>`, `v1.2.0@sha1:<sha>` or `sha1:<sha>`.
        public var revision: String
        public var lastUpdateTime: String?

        public init(revision: String, lastUpdateTime: String? = nil) {
            self.revision = revision
            self.lastUpdateTime = lastUpdateTime
        }
    }

    public struct Status: ResourceStatus {
        public var observedGeneration: Int64?
        public var conditions: [Condition]?
        public var artifact: Artifact?
        public var lastAppliedRevision: String?
        public var lastAttemptedRevision: String?
        public var inventory: [InventoryEntry]?
        /// The path on the controller's HTTPS port that syncs this repository: `/hooks/gitrepositories/NAME`.
        public var webhookPath: String?
        /// The last `steady.dev/requestedAt` annotation value handled.
        public var lastHandledReconcileAt: String?
        /// Objects of the inventory that other sources declare too (with the `Conflicted` condition).
        public var conflicts: [Conflict]?
        public init() {}
    }

    public static let kind = "GitRepository"
    public static let plural = "gitrepositories"
    public static let shortNames = ["gitrepo"]
    /// The annotation that `steady reconcile` (or kubectl annotate) sets to ask for a sync now.
    public static let requestedAtAnnotation = "steady.dev/requestedAt"

    public var url: String
    public var ref: Reference?
    public var path: String?
    public var interval: DurationString?
    public var timeout: DurationString?
    public var prune: Bool?
    public var suspend: Bool?
    public var secretRef: LocalObjectReference?
    public var webhook: Webhook?

    /// Creates a spec; only the URL is required.
    public init(
        url: String, ref: Reference? = nil, path: String? = nil, interval: DurationString? = nil,
        timeout: DurationString? = nil, prune: Bool? = nil, suspend: Bool? = nil,
        secretRef: LocalObjectReference? = nil, webhook: Webhook? = nil
    ) {
        self.url = url
        self.ref = ref
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.prune = prune
        self.suspend = suspend
        self.secretRef = secretRef
        self.webhook = webhook
    }

    public func validate() -> [FieldError] {
        var errors: [FieldError] = []
        let schemes = ["https://", "http://", "ssh://", "git://", "git@", "file://"]
        if !schemes.contains(where: url.hasPrefix) {
            errors.append(FieldError(path: "url", message: "must be an https://, ssh://, git://, git@ or file:// URL"))
        }
        if let scheme = url.range(of: "://") {
            let authority = url[scheme.upperBound...].prefix { $0 != "/" }
            if let at = authority.lastIndex(of: "@"), authority[..<at].contains(":") {
                errors.append(
                    FieldError(
                        path: "url", message: "must not carry a password; put credentials in the secretRef Secret"))
            }
        }
        if let ref, [ref.branch, ref.tag, ref.semver, ref.commit].compactMap({ $0 }).count > 1 {
            errors.append(FieldError(path: "ref", message: "set one of branch, tag, semver or commit"))
        }
        if let commit = ref?.commit, commit.count != 40 || !commit.allSatisfy(\.isHexDigit) {
            errors.append(FieldError(path: "ref.commit", message: "must be a full 40-character SHA-1"))
        }
        if let range = ref?.semver, SemanticVersionRange(range) == nil {
            errors.append(
                FieldError(path: "ref.semver", message: "not a version range such as \">=1.2.0 <2.0.0\" or \"1.x\""))
        }
        if let path, path.split(separator: "/").contains("..") {
            errors.append(FieldError(path: "path", message: "must stay inside the repository (no '..')"))
        }
        return errors
    }

    public static let fieldDescriptions = [
        "url": "The repository to fetch: https://, ssh://, git:// or file://.",
        "ref": "branch, tag, semver range or commit; the default branch when empty.",
        "path": "Directory of manifests inside the repository (the root by default).",
        "interval": "How often to ask the repository for a new revision (with a little jitter).",
        "timeout": "The longest a git command may run (60s by default).",
        "prune": "Delete objects whose manifests were removed.",
        "suspend": "Stop fetching and applying.",
        "secretRef": "A Secret with username/password, bearerToken, or identity and knownHosts for SSH.",
        "webhook": "The Secret (key token) that authenticates POST /hooks/gitrepositories/NAME.",
    ]
}
