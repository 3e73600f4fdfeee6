import Foundation
import Resources

/// An agent's state directory on disk (default `/var/lib/steady-agent`, mode 0700).
///
/// - `ca.crt`: the controller's CA, pinned by the join token at enrolment (0644);
/// - `runner`: the runner name (0600);
/// - `credential`: the credential enrolment issued (0600), written last, so its presence means enrolled;
/// - `credential-lifetime`: when the credential was issued and expires (two RFC 3339 lines), written before it;
/// - `slice.json`: the last good slice, which may hold secret values (0600), replaced atomically.
public struct AgentStateDirectory: SliceStorage, IdentityStorage {
    /// File names inside the directory.
    public enum FileName {
        public static let caCertificate = "ca.crt"
        public static let runner = "runner"
        public static let credential = "credential"
        public static let credentialLifetime = "credential-lifetime"
        public static let slice = "slice.json"
        /// The controllers the join token named, one URL a line.
        public static let controllers = "controllers"
    }

    /// The directory.
    public let path: String

    /// Uses the directory at `path`, creating it with mode 0700 when it does not exist.
    public init(path: String) throws(AgentError) {
        self.path = URL(fileURLWithPath: path).standardizedFileURL.path
        permissions = try PrivateFile.ensureDirectory(self.path)
    }

    /// The directory's permission bits when it was opened.
    public let permissions: Int

    /// The path of a file in the directory.
    public func file(_ name: String) -> String { "\(path)/\(name)" }

    // MARK: Identity

    public func loadIdentity() throws(AgentError) -> AgentIdentity? {
        guard let credential = try PrivateFile.read(file(FileName.credential)) else { return nil }
        func required(_ name: String) throws(AgentError) -> String {
            guard let data = try PrivateFile.read(file(name)) else {
                throw AgentError(
                    code: .storage,
                    message: "the state directory \(path) has a credential but no \(name); remove the credential "
                        + "and enrol again with a new join token")
            }
            return String(decoding: data, as: UTF8.self)
        }
        let runner = try required(FileName.runner).trimmingWhitespace()
        let caPEM = try required(FileName.caCertificate)
        let token = String(decoding: credential, as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty, !runner.isEmpty else {
            throw AgentError(
                code: .storage,
                message: "the credential or runner file in \(path) is empty; remove them and enrol again")
        }
        let controllers = try PrivateFile.read(file(FileName.controllers)).map {
            AgentConfiguration.split(String(decoding: $0, as: UTF8.self).replacingOccurrences(of: "\n", with: ","))
        }
        // Missing (an agent enrolled before credentials expired): the agent rotates at once to learn it.
        let lifetime = try PrivateFile.read(file(FileName.credentialLifetime)).map {
            String(decoding: $0, as: UTF8.self).split(separator: "\n").map { Timestamp.parse(String($0)) }
        }
        var identity = AgentIdentity(
            runner: runner, credential: token, caPEM: caPEM, controllers: controllers ?? [],
            credentialIssued: lifetime?.first ?? nil, credentialExpires: lifetime?.dropFirst().first ?? nil)
        identity.isCredentialLifetimeKnown = lifetime != nil
        return identity
    }

    public func saveIdentity(_ identity: AgentIdentity) throws(AgentError) {
        try PrivateFile.write(Array(identity.caPEM.utf8), to: file(FileName.caCertificate), mode: 0o644)
        try PrivateFile.write(Array("\(identity.runner)\n".utf8), to: file(FileName.runner))
        try PrivateFile.write(Array("\(identity.credential)\n".utf8), to: file(FileName.credential))
        // After the credential: a crash between the two leaves the replaced credential's lifetime, which ends
        // sooner, so the agent rotates early, never late. No second line: the credential does not expire.
        let issued = identity.credentialIssued.map(Timestamp.format) ?? "-"
        let lines = "\(issued)\n" + (identity.credentialExpires.map { "\(Timestamp.format($0))\n" } ?? "")
        try PrivateFile.write(Array(lines.utf8), to: file(FileName.credentialLifetime))
        if !identity.controllers.isEmpty {
            let lines = identity.controllers.map { "\($0)\n" }.joined()
            try PrivateFile.write(Array(lines.utf8), to: file(FileName.controllers), mode: 0o644)
        }
    }

    // MARK: Slice

    /// How `slice.json` is laid out.
    struct StoredSlice: Codable {
        var revision: Int64
        var digest: String
        var objects: [SliceObject]
    }

    /// The saved slice; a damaged one (unreadable, or not matching its digest) is set aside as
    /// `slice.json.corrupt-<time>` and reported as an error naming both files, so the agent starts empty and the
    /// controller's next slice replaces it.
    public func loadSlice() throws(AgentError) -> RunnerSlice? {
        let location = file(FileName.slice)
        guard let data = try PrivateFile.read(location) else { return nil }
        do {
            return try Self.decodeSlice(data, location: location)
        } catch {
            let aside = try PrivateFile.setAside(location)
            throw AgentError(
                code: .storage, message: "\(error.message); it was set aside as \(aside)", underlying: error.underlying)
        }
    }

    private static func decodeSlice(_ data: Data, location: String) throws(AgentError) -> RunnerSlice {
        let stored: StoredSlice
        do {
            stored = try JSONValue.parse(data).decode(as: StoredSlice.self)
        } catch {
            throw AgentError(code: .storage, message: "\(location) is not a saved slice", underlying: error)
        }
        let slice = RunnerSlice(revision: stored.revision, objects: stored.objects)
        guard slice.digest == stored.digest else {
            throw AgentError(
                code: .storage,
                message: "\(location) has digest \(slice.digest) but records \(stored.digest); it was modified")
        }
        return slice
    }

    public func saveSlice(_ slice: RunnerSlice) throws(AgentError) {
        let stored = StoredSlice(revision: slice.revision, digest: slice.digest, objects: slice.sliceObjects)
        let bytes: Data
        do {
            bytes = try JSONValue(encoding: stored).jsonData()
        } catch {
            throw AgentError(code: .storage, message: "cannot encode the slice", underlying: error)
        }
        try PrivateFile.write(Array(bytes), to: file(FileName.slice))
    }
}
