/// The wire protocol between the controller and runner agents.
///
/// Agents dial the controller; no port is opened on a host for control traffic. Over HTTPS:
/// - `GET  /steady/v1/ca` (no auth): the CA certificate, which an agent pins by the hash in its join token.
/// - `POST /steady/v1/enroll` (join token as bearer): trades the token for a per-agent credential;
/// - `POST /steady/v1/credential` (the credential as bearer): rotates it before it expires.
///
/// Then each agent holds one TLS connection on the same port, with the ALPN protocol ``streamProtocol``
/// instead of HTTP, carrying newline-delimited JSON both ways:
/// - the agent first sends an ``AgentHello`` with its credential and the slice revision and digest it holds;
/// - the controller answers with ``SliceMessage``s (a snapshot or a diff since that revision, then diffs and
///   keep-alives), or with one ``AgentStreamRefusal`` and closes;
/// - the agent sends ``AgentReport``s (heartbeat and sync status) whenever it has something to say.
///
/// A connection costs the controller a TLS session and a few small buffers: no HTTP/2 state and no request per
/// report, which is what lets one controller hold tens of thousands of runners.
public enum AgentProtocol {
    public static let caPath = "/steady/v1/ca"
    public static let enrollPath = "/steady/v1/enroll"
    /// `POST` with the agent's current credential as bearer: answers an ``EnrollmentResponse`` with a new one,
    /// which replaces it once the agent uses it on its stream.
    public static let credentialPath = "/steady/v1/credential"

    /// The ALPN protocol name of the agent stream.
    public static let streamProtocol = "steady-agent/1"
    /// The longest line the controller accepts from an agent (a hello or a report).
    public static let maximumAgentLineLength = 64 * 1024

    /// Kinds a slice may hold. A runner with a `spec.schedule` gets its own Runner (name and schedule only) in its
    /// slice, so its agent keeps running on schedule while the controller is away.
    public static let sliceKinds = [Secret.kind, TemplateSpec.kind, ActionSpec.kind, RouteSpec.kind, RunnerSpec.kind]
}

/// The first line an agent sends on its stream: who it is and what it holds.
public struct AgentHello: Codable, Sendable, Equatable {
    public var runner: String
    /// The agent's credential, from enrolment.
    public var credential: String
    /// The slice revision the agent holds (0 for none); the controller sends a diff from it when it can.
    public var revision: Int64
    public var digest: String?

    public init(runner: String, credential: String, revision: Int64, digest: String?) {
        self.runner = runner
        self.credential = credential
        self.revision = revision
        self.digest = digest
    }
}

/// The controller's answer when it will not serve a stream: an HTTP status code and why. The connection closes
/// after it.
public struct AgentStreamRefusal: Codable, Sendable, Equatable, Error {
    /// 401 (unknown or revoked credential), 403 (another runner's credential) or 400 (a malformed line).
    public var refused: Int
    public var message: String
    /// A CamelCase reason the agent acts on: ``credentialExpired``; nil for the others.
    public var reason: String?

    /// The credential expired: the controller closed the stream at its expiry, or refused it at connect.
    public static let credentialExpired = "CredentialExpired"

    public init(refused: Int, message: String, reason: String? = nil) {
        self.refused = refused
        self.message = message
        self.reason = reason
    }
}

/// What an agent sends to enrol.
public struct EnrollmentRequest: Codable, Sendable, Equatable {
    public var name: String
    public var labels: [String: String]?
    public var hostname: String?
    public var agentVersion: String?

    public init(name: String, labels: [String: String]? = nil, hostname: String? = nil, agentVersion: String? = nil) {
        self.name = name
        self.labels = labels
        self.hostname = hostname
        self.agentVersion = agentVersion
    }
}

/// The credential an enrolled agent uses from then on.
public struct EnrollmentResponse: Codable, Sendable, Equatable {
    public var runner: String
    public var credential: String
    /// When the credential expires (RFC 3339); the agent rotates it before then. Absent: it does not expire.
    public var expiresAt: String?

    public init(runner: String, credential: String, expiresAt: String? = nil) {
        self.runner = runner
        self.credential = credential
        self.expiresAt = expiresAt
    }
}

/// One object of a slice, identified by kind and name.
public struct SliceKey: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var kind: String
    public var name: String

    public init(kind: String, name: String) {
        self.kind = kind
        self.name = name
    }

    public static func < (left: SliceKey, right: SliceKey) -> Bool { (left.kind, left.name) < (right.kind, right.name) }
    public var description: String { "\(kind)/\(name)" }
}

/// A message on an agent's slice stream.
public struct SliceMessage: Codable, Sendable, Equatable {
    public enum MessageType: String, Codable, Sendable {
        /// The whole slice: replace everything held.
        case snapshot
        /// Changes since `baseRevision`: upsert `objects`, delete `removed`.
        case diff
        /// Nothing changed; the connection is alive.
        case keepalive
    }

    public var type: MessageType
    /// The slice revision after applying this message.
    public var revision: Int64
    public var baseRevision: Int64?
    public var objects: [SliceObject]?
    public var removed: [SliceKey]?
    /// SHA-256 of the whole slice after applying, so an agent can tell it holds exactly what was sent.
    public var digest: String?

    public init(
        type: MessageType, revision: Int64, baseRevision: Int64? = nil, objects: [SliceObject]? = nil,
        removed: [SliceKey]? = nil, digest: String? = nil
    ) {
        self.type = type
        self.revision = revision
        self.baseRevision = baseRevision
        self.objects = objects
        self.removed = removed
        self.digest = digest
    }
}

/// An object in a slice. Secrets carry their real values: a slice goes only to its runner.
public struct SliceObject: Codable, Sendable, Equatable {
    public var kind: String
    public var name: String
    public var object: JSONValue

    public init(kind: String, name: String, object: JSONValue) {
        self.kind = kind
        self.name = name
        self.object = object
    }

    public var key: SliceKey { SliceKey(kind: kind, name: name) }
}

/// An agent's heartbeat and sync status.
public struct AgentReport: Codable, Sendable, Equatable {
    public var hostname: String?
    public var agentVersion: String?
    /// The slice revision the agent applied last (its last good slice).
    public var observedSliceRevision: Int64?
    public var sliceDigest: String?
    /// Whether the newest slice received was applied; when false, why.
    public var synced: Bool
    public var reason: String?
    public var message: String?
    /// The latest run on the runner's own schedule (running or ended), written as the Runner's `status.lastRun`;
    /// absent when the agent has none to tell (the status keeps what it had).
    public var lastRun: RunnerSpec.RunSummary?

    public init(
        hostname: String? = nil, agentVersion: String? = nil, observedSliceRevision: Int64? = nil,
        sliceDigest: String? = nil, synced: Bool, reason: String? = nil, message: String? = nil,
        lastRun: RunnerSpec.RunSummary? = nil
    ) {
        self.hostname = hostname
        self.agentVersion = agentVersion
        self.observedSliceRevision = observedSliceRevision
        self.sliceDigest = sliceDigest
        self.synced = synced
        self.reason = reason
        self.message = message
        self.lastRun = lastRun
    }
}

/// Asks the controller whether the runners affected by some objects have applied them (`apply --wait`).
///
/// `POST /steady/v1/convergence` (admin).
public struct ConvergenceRequest: Codable, Sendable, Equatable {
    public static let path = "/steady/v1/convergence"

    /// The store revision of the newest applied change.
    public var revision: Int64
    public var objects: [SliceKey]

    public init(revision: Int64, objects: [SliceKey]) {
        self.revision = revision
        self.objects = objects
    }
}

/// Per affected runner: whether its agent holds a slice that includes the change.
public struct ConvergenceReport: Codable, Sendable, Equatable {
    public struct RunnerState: Codable, Sendable, Equatable {
        public var name: String
        public var isSynced: Bool
        /// Why not, when not: `Disconnected`, `NeverConnected`, `SyncPending`, or the agent's own reason.
        public var reason: String?
        public var message: String?

        public init(name: String, isSynced: Bool, reason: String? = nil, message: String? = nil) {
            self.name = name
            self.isSynced = isSynced
            self.reason = reason
            self.message = message
        }
    }

    /// False until the controller has computed slices from at least the requested revision.
    public var isCaughtUp: Bool
    public var runners: [RunnerState]

    public init(isCaughtUp: Bool, runners: [RunnerState]) {
        self.isCaughtUp = isCaughtUp
        self.runners = runners
    }

    public var isConverged: Bool { isCaughtUp && runners.allSatisfy(\.isSynced) }
}
