import Foundation
import Resources

/// What the store keeps of one runner's agent credential, and the decisions about it, as a value that does no I/O:
/// whether a presented credential is accepted (and until when), whether it may be rotated, and what rotation and
/// its confirmation leave behind.
///
/// A record holds at most two digests: the current credential, and the one it replaced. The replaced one stays
/// accepted until the new one is first used on a stream (the agent's confirmation that it holds the new one), then
/// is kept only to say why it is refused. Time is a parameter, so tests decide it.
struct AgentCredentialRecord: Equatable, Sendable {
    /// One credential: the digest of its secret and when it stops being accepted (nil: never).
    struct Entry: Equatable, Sendable {
        var digest: String
        var expires: Date?
    }

    var current: Entry
    var issued: Date?
    /// The credential that `current` replaced by rotation, if any.
    var previous: Entry?
    /// Whether the agent has confirmed the rotation (used `current` on a stream), so that `previous` is refused.
    var isPreviousRetired = false

    /// What becomes of a presented credential.
    enum Verdict: Equatable {
        /// Accepted until `expires` (nil: no expiry); `confirmsRotation` when this use retires the previous one.
        case accepted(expires: Date?, confirmsRotation: Bool)
        /// Refused, with the reason to give the agent and to log.
        case refused(reason: String, hasExpired: Bool)
    }

    /// Decides about the credential with digest `digest` at `now`; nil when it is not this record's.
    func verdict(digest: String, runner: String, now: Date) -> Verdict? {
        if digest == current.digest {
            if let expires = current.expires, expires <= now {
                return .refused(reason: Self.expiredReason(runner: runner, at: expires), hasExpired: true)
            }
            return .accepted(expires: current.expires, confirmsRotation: previous != nil && !isPreviousRetired)
        }
        guard let previous, digest == previous.digest else { return nil }
        if let expires = previous.expires, expires <= now {
            return .refused(reason: Self.expiredReason(runner: runner, at: expires), hasExpired: true)
        }
        if isPreviousRetired {
            return .refused(
                reason: "the credential of runner \(runner) was replaced by a rotated one, which its agent now uses",
                hasExpired: false)
        }
        return .accepted(expires: previous.expires, confirmsRotation: false)
    }

    static func expiredReason(runner: String, at expires: Date) -> String {
        "the credential of runner \(runner) expired at \(Timestamp.format(expires))"
    }

    /// Why the credential with digest `digest` may not be rotated now, or nil when it may: only the current,
    /// unexpired credential rotates, so a credential is rotated once, and a copy of it held by another agent
    /// cannot take the runner over.
    func rotationRefusal(digest: String, runner: String, now: Date) -> String? {
        guard digest == current.digest else {
            return "this credential of runner \(runner) was already rotated; the agent holding the new one uses it "
                + "(a copy of a state directory cannot rotate)"
        }
        if let expires = current.expires, expires <= now { return Self.expiredReason(runner: runner, at: expires) }
        return nil
    }

    /// The record after rotating to a credential with digest `digest`, issued at `now` for `ttl` (nil: no expiry).
    /// The replaced credential stays accepted until the new one is confirmed.
    func rotated(to digest: String, now: Date, ttl: Duration?) -> AgentCredentialRecord {
        AgentCredentialRecord(
            current: Entry(digest: digest, expires: Self.expiry(issued: now, ttl: ttl)), issued: now,
            previous: current, isPreviousRetired: false)
    }

    /// The record once the agent has used the new credential: the previous one is refused from now on.
    func confirmed() -> AgentCredentialRecord {
        var record = self
        record.isPreviousRetired = true
        return record
    }

    /// A new credential's expiry, to the second (as stored).
    static func expiry(issued: Date, ttl: Duration?) -> Date? {
        guard let ttl else { return nil }
        let seconds = (issued.timeIntervalSince1970 + Double(ttl.components.seconds)).rounded(.down)
        return Date(timeIntervalSince1970: seconds)
    }

    // MARK: Stored form

    /// The record as stored under `_AgentCredential/<runner>`.
    var json: JSONValue {
        var value: [String: JSONValue] = ["digest": .string(current.digest)]
        if let issued { value["issued"] = .string(Timestamp.format(issued)) }
        if let expires = current.expires { value["expires"] = .string(Timestamp.format(expires)) }
        if let previous {
            var entry: [String: JSONValue] = ["digest": .string(previous.digest), "retired": .bool(isPreviousRetired)]
            if let expires = previous.expires { entry["expires"] = .string(Timestamp.format(expires)) }
            value["previous"] = .object(entry)
        }
        return .object(value)
    }

    /// Reads a stored record; nil when it has no digest. A record written before credentials expired has no
    /// `expires` and does not expire: its agent rotates it at its next start, which gives it one.
    init?(_ value: JSONValue) {
        guard let digest = value["digest"]?.stringValue else { return nil }
        let issued = value["issued"]?.stringValue.flatMap(Timestamp.parse)
        // Fail closed: an expiry that cannot be read is taken as passed.
        let expires = value["expires"]?.stringValue.map { Timestamp.parse($0) ?? .distantPast }
        self.init(current: Entry(digest: digest, expires: expires), issued: issued)
        if let entry = value["previous"], let previousDigest = entry["digest"]?.stringValue {
            previous = Entry(
                digest: previousDigest,
                expires: entry["expires"]?.stringValue.map { Timestamp.parse($0) ?? .distantPast })
            isPreviousRetired = entry["retired"]?.boolValue ?? true
        }
    }

    /// `issued` is kept to the second, as stored, so that a record read back equals the one written.
    init(current: Entry, issued: Date?, previous: Entry? = nil, isPreviousRetired: Bool = false) {
        self.current = current
        self.issued = issued.map { Date(timeIntervalSince1970: $0.timeIntervalSince1970.rounded(.down)) }
        self.previous = previous
        self.isPreviousRetired = isPreviousRetired
    }
}
