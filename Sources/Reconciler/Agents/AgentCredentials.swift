import Crypto
import Foundation
import Resources
import TLSSupport

/// Per-agent credentials and join tokens, kept where the REST API cannot reach them.
///
/// Join tokens are Secrets of type `steady.dev/join-token` (so admins create, list and revoke them with the
/// ordinary API), holding only a digest of the token's secret part. Agent credentials live in the store
/// under an internal kind that no API path serves; only their digests are stored, with their expiry
/// (``AgentCredentialRecord`` decides). An agent rotates its credential before it expires
/// (`POST /steady/v1/credential`); the replaced one is refused once the agent has used the new one on its stream.
public actor AgentCredentials: Authenticating {
    public static let joinTokenType = "steady.dev/join-token"
    /// The type of the Secrets behind events tokens (`steady token create --events`).
    public static let eventsTokenType = "steady.dev/events-token"
    static let credentialKind = "_AgentCredential"
    /// How long an agent credential lasts unless the controller is told otherwise (`--agent-credential-ttl`).
    public static let defaultTTL = Duration.seconds(720 * 3600)

    /// A credential just issued, and when it expires (nil: never).
    public struct Issued: Sendable {
        public var credential: String
        public var expires: Date?
    }

    let store: any ObjectStore
    let adminDigest: [UInt8]
    /// How long a credential issued now lasts; nil: forever.
    let ttl: Duration?
    /// The wall clock expiries are read against (they are instants shared by every replica); injected by tests.
    let now: @Sendable () -> Date
    /// Digest of each agent credential (current or replaced) → runner name.
    private var runnersByDigest: [String: String] = [:]
    /// Each runner's credential record.
    private var records: [String: AgentCredentialRecord] = [:]
    private var isLoaded = false

    /// Credentials issued from now on last `ttl` (nil: forever), as told by `now`.
    public init(
        store: any ObjectStore, adminToken: String, ttl: Duration? = nil,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        adminDigest = Array(SHA256.hash(data: Data(adminToken.utf8)))
        self.ttl = ttl
        self.now = now
    }

    static func digest(_ token: String) -> String {
        Hex.encode(Array(SHA256.hash(data: Data(token.utf8))))
    }

    public func identity(forToken token: String) async -> Identity? {
        let digest = Array(SHA256.hash(data: Data(token.utf8)))
        var difference: UInt8 = 0
        for (left, right) in zip(digest, adminDigest) { difference |= left ^ right }
        if difference == 0 { return .admin }
        await loadIfNeeded()
        // Dictionary lookup by digest: the digest of a guessed token reveals nothing about stored ones.
        let hex = Hex.encode(digest)
        if let runner = runnersByDigest[hex] {
            guard case .accepted? = records[runner]?.verdict(digest: hex, runner: runner, now: now()) else {
                return nil
            }
            return .runner(runner)
        }
        // An events token is looked up each time, so that revoking it takes effect at once.
        if (try? await verifyToken(token, forEvents: true)) != nil { return .eventIngest }
        return nil
    }

    /// Whether `token` may open `runner`'s agent stream, until when, and why not. Using a rotated credential on a
    /// stream confirms the rotation: the credential it replaced is refused from then on.
    public func streamAccess(forToken token: String, runner: String) async -> AgentStreamAccess {
        await loadIfNeeded()
        let digest = Self.digest(token)
        if runnersByDigest[digest] == nil {
            // Another replica may have issued it a moment ago (a rotation answered there): read the record.
            await reload(runner: runner)
        }
        guard let owner = runnersByDigest[digest], let record = records[owner] else {
            if await identity(forToken: token) != nil {
                return .refused(AgentStreamRefusal(refused: 403, message: Self.ownStreamOnly(runner)))
            }
            return .refused(AgentStreamRefusal(refused: 401, message: "Unauthorized: unknown or revoked credential"))
        }
        guard owner == runner else {
            return .refused(AgentStreamRefusal(refused: 403, message: Self.ownStreamOnly(runner)))
        }
        switch record.verdict(digest: digest, runner: runner, now: now()) {
        case .refused(let reason, let hasExpired)?:
            return .refused(
                AgentStreamRefusal(
                    refused: 401, message: "Unauthorized: \(reason)",
                    reason: hasExpired ? AgentStreamRefusal.credentialExpired : nil))
        case .accepted(let expires, let confirmsRotation)?:
            if confirmsRotation { await confirm(runner: runner, record: record) }
            return .granted(runner: runner, expires: expires)
        case nil:
            return .refused(AgentStreamRefusal(refused: 401, message: "Unauthorized: unknown or revoked credential"))
        }
    }

    static func ownStreamOnly(_ runner: String) -> String {
        "an agent may only use its own runner's stream (runner \"\(runner)\")"
    }

    /// Retires the credential a rotation replaced, now that its agent uses the new one.
    private func confirm(runner: String, record: AgentCredentialRecord) async {
        let confirmed = record.confirmed()
        records[runner] = confirmed
        // Written where the other replicas see it; if the write loses a race, the next stream open confirms again.
        guard let existing = try? await store.get(kind: Self.credentialKind, name: runner),
            let stored = try? JSONValue.parse(existing.value),
            AgentCredentialRecord(stored) == record
        else { return }
        _ = try? await store.update(
            kind: Self.credentialKind, name: runner, value: confirmed.json.jsonData(),
            expectedRevision: existing.modRevision)
    }

    /// Reads one runner's record from the store.
    private func reload(runner: String) async {
        guard let object = try? await store.get(kind: Self.credentialKind, name: runner) else { return }
        set(runner: runner, index(object))
    }

    private func loadIfNeeded() async {
        guard !isLoaded else { return }
        guard let listed = try? await store.list(kind: Self.credentialKind) else { return }
        replace(with: listed.objects)
    }

    /// Follows the store's credential records until cancelled. Controllers sharing a store (etcd) issue, rotate and
    /// revoke credentials for each other: a revocation through one holds on all. The agent gateway runs this.
    public func followStore() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let listed = try await store.list(kind: Self.credentialKind)
                replace(with: listed.objects)
                for try await event in try await store.watch(kind: Self.credentialKind, fromRevision: listed.revision) {
                    apply(event)
                    failures = 0
                }
            } catch {
                // Compacted, or the store is away: list again after the shared backoff.
            }
            try? await Task.sleep(for: Backoff.watchRestart.jitteredDelay(attempt: failures))
            failures += 1
        }
    }

    /// The record a stored object holds; nil when it holds none.
    private func index(_ object: StoredObject) -> AgentCredentialRecord? {
        guard let value = try? JSONValue.parse(object.value) else { return nil }
        return AgentCredentialRecord(value)
    }

    /// Records `record` as `runner`'s (nil: it has none), replacing the digests of the previous one.
    private func set(runner: String, _ record: AgentCredentialRecord?) {
        if let old = records.removeValue(forKey: runner) {
            runnersByDigest[old.current.digest] = nil
            if let previous = old.previous { runnersByDigest[previous.digest] = nil }
        }
        guard let record else { return }
        records[runner] = record
        runnersByDigest[record.current.digest] = runner
        if let previous = record.previous { runnersByDigest[previous.digest] = runner }
    }

    private func apply(_ event: StoreEvent) {
        set(runner: event.object.name, event.type == .deleted ? nil : index(event.object))
    }

    private func replace(with objects: [StoredObject]) {
        records = [:]
        runnersByDigest = [:]
        for object in objects { set(runner: object.name, index(object)) }
        isLoaded = true
    }

    /// Issues a new credential for a runner, replacing any previous one (enrolment).
    func issue(runner: String) async throws -> Issued {
        await loadIfNeeded()
        let credential = Self.randomToken(bytes: 32)
        let issued = now()
        let expires = AgentCredentialRecord.expiry(issued: issued, ttl: ttl)
        let record = AgentCredentialRecord(
            current: .init(digest: Self.digest(credential), expires: expires), issued: issued)
        if let existing = try await store.get(kind: Self.credentialKind, name: runner) {
            _ = try await store.update(
                kind: Self.credentialKind, name: runner, value: record.json.jsonData(),
                expectedRevision: existing.modRevision)
        } else {
            _ = try await store.create(kind: Self.credentialKind, name: runner, value: record.json.jsonData())
        }
        set(runner: runner, record)
        return Issued(credential: credential, expires: record.current.expires)
    }

    /// Issues a runner's agent a new credential in exchange for its current one (`token`), which stays accepted
    /// until the new one is used on a stream.
    ///
    /// - Throws: 401 when `token` is not an agent's current credential or has expired, 409 when it was rotated
    ///   already (so a copy of an agent's state directory cannot take its runner over).
    func rotate(token: String) async throws(APIError) -> (runner: String, issued: Issued) {
        await loadIfNeeded()
        let digest = Self.digest(token)
        guard let runner = runnersByDigest[digest], let record = records[runner] else {
            throw APIError(.unauthorized, "unknown or revoked credential")
        }
        let issuedAt = now()
        if let refusal = record.rotationRefusal(digest: digest, runner: runner, now: issuedAt) {
            throw APIError(digest == record.current.digest ? .unauthorized : .conflict, refusal)
        }
        let credential = Self.randomToken(bytes: 32)
        let rotated = record.rotated(to: Self.digest(credential), now: issuedAt, ttl: ttl)
        do {
            guard let existing = try await store.get(kind: Self.credentialKind, name: runner),
                let stored = try? JSONValue.parse(existing.value),
                AgentCredentialRecord(stored) == record
            else {
                await reload(runner: runner)
                // Another replica rotated or confirmed it a moment ago: the agent tries again after a backoff.
                throw APIError(
                    .serviceUnavailable, "the credential of runner \(runner) changed meanwhile; try again")
            }
            _ = try await store.update(
                kind: Self.credentialKind, name: runner, value: rotated.json.jsonData(),
                expectedRevision: existing.modRevision)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(.serviceUnavailable, "cannot record the rotated credential of runner \(runner): \(error)")
        }
        set(runner: runner, rotated)
        return (runner, Issued(credential: credential, expires: rotated.current.expires))
    }

    /// Revokes a runner's credential (when its Runner object is deleted).
    func revoke(runner: String) async {
        await loadIfNeeded()
        guard records[runner] != nil else { return }
        set(runner: runner, nil)
        _ = try? await store.delete(kind: Self.credentialKind, name: runner, expectedRevision: nil)
    }

    func hasCredential(runner: String) async -> Bool {
        await loadIfNeeded()
        return records[runner] != nil
    }

    /// Checks a join token (`<id>.<secret>`) against its Secret: present, of the right type, unexpired.
    func verifyJoinToken(_ token: String) async throws(APIError) {
        try await verifyToken(token, forEvents: false)
    }

    /// Checks a join or events token (`<id>.<secret>`) against its Secret: present, of the right type, unexpired.
    func verifyToken(_ token: String, forEvents: Bool) async throws(APIError) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, JoinToken.isValidID(parts[0]), parts[1].count >= 16 else {
            throw APIError(.unauthorized, "malformed join token: expected <id>.<secret> after the CA hash")
        }
        let name = JoinToken.secretName(id: String(parts[0]), forEvents: forEvents)
        guard let stored = try? await store.get(kind: Secret.kind, name: name),
            let secret = try? JSONValue.parse(stored.value),
            secret["type"]?.stringValue == (forEvents ? Self.eventsTokenType : Self.joinTokenType)
        else {
            throw APIError(.unauthorized, "unknown or revoked join token \(parts[0])")
        }
        let data = secret["data"]?.objectValue ?? [:]
        func field(_ key: String) -> String? {
            data[key]?.stringValue.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
        }
        guard let expected = field("token-secret-sha256"), expected == Self.digest(String(parts[1])) else {
            throw APIError(.unauthorized, "invalid join token \(parts[0])")
        }
        if let expiration = field("expiration") {
            // Fail closed: an expiration that cannot be read is treated as passed.
            guard let date = Timestamp.parse(expiration), date > Date() else {
                throw APIError(.unauthorized, "join token \(parts[0]) expired at \(expiration)")
            }
        }
    }

    static func randomToken(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

/// Join tokens: `<caHash>::<id>.<secret>`, stored as a Secret named `join-token-<id>`.
public enum JoinToken {
    public static func secretName(id: String, forEvents: Bool = false) -> String {
        forEvents ? "events-token-\(id)" : "join-token-\(id)"
    }

    /// Six lowercase alphanumerics, as kubeadm's token ids.
    static func isValidID(_ id: Substring) -> Bool {
        id.count == 6 && id.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber) }
    }

    /// A new token id and secret, and the Secret that records it (digest only); with `forEvents`, a token that may
    /// only post events (`POST /events`).
    public static func make(
        ttl: Duration?, description: String?, forEvents: Bool = false
    ) -> (id: String, secret: String, object: JSONValue) {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        let id = String((0..<6).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
        let secret = String((0..<16).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
        var data: [String: JSONValue] = [
            "token-id": .string(Data(id.utf8).base64EncodedString()),
            "token-secret-sha256": .string(Data(AgentCredentials.digest(secret).utf8).base64EncodedString()),
        ]
        var annotations: [String: JSONValue] = [:]
        if let ttl {
            let expiration = Timestamp.format(Date().addingTimeInterval(Double(ttl.components.seconds)))
            data["expiration"] = .string(Data(expiration.utf8).base64EncodedString())
            annotations["steady.dev/expires"] = .string(expiration)
        }
        if let description { annotations["steady.dev/description"] = .string(description) }
        let label = forEvents ? "steady.dev/events-token" : "steady.dev/join-token"
        var metadata: JSONValue = [
            "name": .string(secretName(id: id, forEvents: forEvents)), "labels": [label: "true"],
        ]
        if !annotations.isEmpty { metadata["annotations"] = .object(annotations) }
        let object: JSONValue = [
            "apiVersion": .string(API.apiVersion), "kind": "Secret", "metadata": metadata,
            "type": .string(forEvents ? AgentCredentials.eventsTokenType : AgentCredentials.joinTokenType),
            "data": .object(data),
        ]
        return (id, secret, object)
    }
}
