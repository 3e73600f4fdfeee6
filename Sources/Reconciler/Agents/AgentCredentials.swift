import Crypto
import Foundation
import Resources
import TLSSupport

/// Per-agent credentials and join tokens, kept where the REST API cannot reach them.
///
/// Join tokens are Secrets of type `steady.dev/join-token` (so admins create, list and revoke them with the
/// ordinary API), holding only a digest of the token's secret part. Agent credentials live in the store
/// under an internal kind that no API path serves; only their digests are stored.
public actor AgentCredentials: Authenticating {
    public static let joinTokenType = "steady.dev/join-token"
    /// The type of the Secrets behind events tokens (`steady token create --events`).
    public static let eventsTokenType = "steady.dev/events-token"
    static let credentialKind = "_AgentCredential"

    let store: any ObjectStore
    let adminDigest: [UInt8]
    /// Digest of each agent credential → runner name.
    private var runnersByDigest: [String: String] = [:]
    private var isLoaded = false

    public init(store: any ObjectStore, adminToken: String) {
        self.store = store
        adminDigest = Array(SHA256.hash(data: Data(adminToken.utf8)))
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
        if let runner = runnersByDigest[Hex.encode(digest)] { return .runner(runner) }
        // An events token is looked up each time, so that revoking it takes effect at once.
        if (try? await verifyToken(token, forEvents: true)) != nil { return .eventIngest }
        return nil
    }

    private func loadIfNeeded() async {
        guard !isLoaded else { return }
        guard let listed = try? await store.list(kind: Self.credentialKind) else { return }
        runnersByDigest = Self.index(listed.objects)
        isLoaded = true
    }

    /// Follows the store's credential records until cancelled. Controllers sharing a store (etcd) issue and revoke
    /// credentials for each other: a revocation through one holds on all. The agent gateway runs this.
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

    /// Digest → runner for stored credential records.
    private static func index(_ objects: [StoredObject]) -> [String: String] {
        var index: [String: String] = [:]
        for object in objects {
            if let value = try? JSONValue.parse(object.value), let digest = value["digest"]?.stringValue {
                index[digest] = object.name
            }
        }
        return index
    }

    private func apply(_ event: StoreEvent) {
        let runner = event.object.name
        runnersByDigest = runnersByDigest.filter { $0.value != runner }
        if event.type != .deleted {
            runnersByDigest.merge(Self.index([event.object])) { $1 }
        }
    }

    private func replace(with objects: [StoredObject]) {
        runnersByDigest = Self.index(objects)
        isLoaded = true
    }

    /// Issues a new credential for a runner, replacing any previous one.
    func issue(runner: String) async throws -> String {
        await loadIfNeeded()
        let credential = Self.randomToken(bytes: 32)
        let digest = Self.digest(credential)
        let record = JSONValue.object(["digest": .string(digest), "issued": .string(Timestamp.now())]).jsonData()
        if let existing = try await store.get(kind: Self.credentialKind, name: runner) {
            _ = try await store.update(kind: Self.credentialKind, name: runner, value: record, expectedRevision: existing.modRevision)
        } else {
            _ = try await store.create(kind: Self.credentialKind, name: runner, value: record)
        }
        runnersByDigest = runnersByDigest.filter { $0.value != runner }
        runnersByDigest[digest] = runner
        return credential
    }

    /// Revokes a runner's credential (when its Runner object is deleted).
    func revoke(runner: String) async {
        await loadIfNeeded()
        guard runnersByDigest.values.contains(runner) else { return }
        runnersByDigest = runnersByDigest.filter { $0.value != runner }
        _ = try? await store.delete(kind: Self.credentialKind, name: runner, expectedRevision: nil)
    }

    func hasCredential(runner: String) async -> Bool {
        await loadIfNeeded()
        return runnersByDigest.values.contains(runner)
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
