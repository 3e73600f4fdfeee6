import Crypto
import Foundation
import Resources
import TLSSupport

/// The revision a reference points at now, as `git ls-remote` told.
struct ResolvedRevision: Sendable, Equatable {
    /// `main`, `v1.2.0`, or nil for a pinned commit.
    var name: String?
    /// The commit's SHA-1.
    var commit: String
    /// What to fetch: `refs/heads/main`, `refs/tags/v1.2.0`, or the commit.
    var fetchRef: String

    /// `main@sha1:<sha>`, or `sha1:<sha>` for a pinned commit.
    var revision: String { (name.map { "\($0)@" } ?? "") + "sha1:\(commit)" }
}

/// One bare, shallow cache of a repository URL, shared by every GitRepository with that URL: commands on it run
/// one at a time, and a commit already fetched and materialised is not fetched again.
///
/// Trees are materialised in a temporary directory and renamed into place (`trees/<sha>`), so a reader never
/// sees a half-written tree.
actor GitRepositoryCache {
    let url: String
    let directory: URL
    let runner: GitCommandRunner
    private var isBusy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    /// How many trees to keep (two sources on one URL may follow two refs).
    let keptTrees = 4

    init(url: String, parent: URL, runner: GitCommandRunner) {
        self.url = url
        let digest = SHA256.hash(data: Data(url.utf8))
        directory = parent.appendingPathComponent(Hex.encode(digest.prefix(12)))
        self.runner = runner
    }

    private var bare: URL { directory.appendingPathComponent("repository.git") }
    private var trees: URL { directory.appendingPathComponent("trees") }

    /// Asks the remote where `reference` points now: one `git ls-remote` (none for a pinned commit).
    func resolve(
        _ reference: GitRepositorySpec.Reference?, credentials: GitCredentials, timeout: Duration
    ) async throws(GitFailure) -> ResolvedRevision {
        if let commit = reference?.commit {
            return ResolvedRevision(name: nil, commit: commit.lowercased(), fetchRef: commit.lowercased())
        }
        let arguments: [String]
        if let branch = reference?.branch {
            arguments = ["ls-remote", "--", url, "refs/heads/\(branch)"]
        } else if let tag = reference?.tag {
            arguments = ["ls-remote", "--", url, "refs/tags/\(tag)", "refs/tags/\(tag)^{}"]
        } else if reference?.semver != nil {
            arguments = ["ls-remote", "--tags", "--", url]
        } else {
            arguments = ["ls-remote", "--symref", "--", url, "HEAD"]
        }
        let output = try await runner.run(arguments, credentials: credentials, timeout: timeout)
        guard output.status == 0 else { throw Self.failure(output, doing: "ls-remote", url: url) }
        var refs: [String: String] = [:]
        var headTarget: String?
        for line in output.standardOutput.split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 1).map(String.init)
            guard fields.count == 2 else { continue }
            if fields[0].hasPrefix("ref: ") {
                headTarget = String(fields[0].dropFirst("ref: ".count))
            } else {
                refs[fields[1]] = fields[0]
            }
        }
        if let branch = reference?.branch {
            guard let commit = refs["refs/heads/\(branch)"] else {
                throw GitFailure(reason: .refNotFound, message: "branch \"\(branch)\" not found in \(url)")
            }
            return ResolvedRevision(name: branch, commit: commit, fetchRef: "refs/heads/\(branch)")
        }
        if let tag = reference?.tag {
            guard let commit = refs["refs/tags/\(tag)^{}"] ?? refs["refs/tags/\(tag)"] else {
                throw GitFailure(reason: .refNotFound, message: "tag \"\(tag)\" not found in \(url)")
            }
            return ResolvedRevision(name: tag, commit: commit, fetchRef: "refs/tags/\(tag)")
        }
        if let text = reference?.semver {
            let tags = refs.keys.filter { $0.hasPrefix("refs/tags/") && !$0.hasSuffix("^{}") }
                .map { String($0.dropFirst("refs/tags/".count)) }
            let versions = Dictionary(tags.compactMap { tag in SemanticVersion(tag).map { ($0.description, tag) } }) {
                first, _ in first
            }
            guard let range = SemanticVersionRange(text),
                let best = range.highest(in: versions.keys.compactMap(SemanticVersion.init)),
                let tag = versions[best.description],
                let commit = refs["refs/tags/\(tag)^{}"] ?? refs["refs/tags/\(tag)"]
            else {
                throw GitFailure(reason: .refNotFound, message: "no tag of \(url) matches semver \"\(text)\"")
            }
            return ResolvedRevision(name: tag, commit: commit, fetchRef: "refs/tags/\(tag)")
        }
        guard let commit = refs["HEAD"] else {
            throw GitFailure(reason: .refNotFound, message: "\(url) has no default branch (HEAD)")
        }
        let branch = headTarget.map { $0.hasPrefix("refs/heads/") ? String($0.dropFirst(11)) : $0 } ?? "HEAD"
        return ResolvedRevision(name: branch, commit: commit, fetchRef: headTarget ?? "HEAD")
    }

    /// The tree of `revision`, fetching it (shallow) into the bare cache first unless it is there already.
    func tree(
        at revision: ResolvedRevision, credentials: GitCredentials, timeout: Duration
    ) async throws(GitFailure) -> URL {
        await acquire()
        defer { release() }
        let fileManager = FileManager.default
        let tree = trees.appendingPathComponent(revision.commit)
        if fileManager.fileExists(atPath: tree.path) { return tree }
        do {
            try fileManager.createDirectory(at: trees, withIntermediateDirectories: true)
        } catch {
            throw GitFailure(reason: .fetchFailed, message: "cannot create the cache \(trees.path): \(error)")
        }
        let gitDirectory = "--git-dir=\(bare.path)"
        if !fileManager.fileExists(atPath: bare.path) {
            let created = try await runner.run(
                ["init", "--bare", "--quiet", bare.path], credentials: .none, timeout: timeout)
            guard created.status == 0 else { throw Self.failure(created, doing: "init", url: url) }
        }
        let present = try await runner.run(
            [gitDirectory, "cat-file", "-e", "\(revision.commit)^{commit}"], credentials: .none, timeout: timeout)
        if present.status != 0 {
            let fetched = try await runner.run(
                [gitDirectory, "fetch", "--quiet", "--depth=1", "--no-tags", "--", url, revision.fetchRef],
                credentials: credentials, timeout: timeout)
            guard fetched.status == 0 else { throw Self.failure(fetched, doing: "fetch", url: url) }
            let arrived = try await runner.run(
                [gitDirectory, "cat-file", "-e", "\(revision.commit)^{commit}"], credentials: .none, timeout: timeout)
            if arrived.status != 0, revision.fetchRef != revision.commit {
                // The ref moved between ls-remote and fetch: fetch the commit itself.
                let again = try await runner.run(
                    [gitDirectory, "fetch", "--quiet", "--depth=1", "--no-tags", "--", url, revision.commit],
                    credentials: credentials, timeout: timeout)
                guard again.status == 0 else { throw Self.failure(again, doing: "fetch", url: url) }
            }
        }
        // Materialise into a temporary directory, then rename it into place in one step.
        let staging = trees.appendingPathComponent(".staging-\(UUID().uuidString)")
        let archive = directory.appendingPathComponent(".archive-\(UUID().uuidString).tar")
        defer {
            try? fileManager.removeItem(at: staging)
            try? fileManager.removeItem(at: archive)
        }
        let archived = try await runner.run(
            [gitDirectory, "archive", "--format=tar", "-o", archive.path, revision.commit], credentials: .none,
            timeout: timeout)
        guard archived.status == 0 else { throw Self.failure(archived, doing: "archive", url: url) }
        do {
            try fileManager.createDirectory(at: staging, withIntermediateDirectories: true)
            try TarExtractor.extract(archive: archive, into: staging)
            try fileManager.moveItem(at: staging, to: tree)
        } catch {
            if fileManager.fileExists(atPath: tree.path) { return tree }
            throw GitFailure(reason: .fetchFailed, message: "cannot materialise commit \(revision.commit): \(error)")
        }
        removeOldTrees(keeping: tree)
        return tree
    }

    private func removeOldTrees(keeping current: URL) {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: trees.path) else { return }
        let dated = names.filter { !$0.hasPrefix(".") }.map { name -> (URL, Date) in
            let url = trees.appendingPathComponent(name)
            let date = (try? fileManager.attributesOfItem(atPath: url.path)[.modificationDate] as? Date) ?? nil
            return (url, date ?? .distantPast)
        }
        for (url, _) in dated.sorted(by: { $0.1 > $1.1 }).dropFirst(keptTrees) where url != current {
            try? fileManager.removeItem(at: url)
        }
    }

    private func acquire() async {
        guard isBusy else {
            isBusy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty {
            isBusy = false
        } else {
            waiters.removeFirst().resume()
        }
    }

    /// Names the failure from what git printed: authentication, host key, missing ref, or anything else.
    static func failure(_ output: GitOutput, doing command: String, url: String) -> GitFailure {
        let text = output.standardError
        let lowered = text.lowercased()
        let reason: GitSourceReason
        if lowered.contains("host key verification failed") || lowered.contains("remote host identification")
            || lowered.contains("no ed25519 host key is known") || lowered.contains("host key is known")
        {
            reason = .knownHostsMismatch
        } else if lowered.contains("authentication failed") || lowered.contains("could not read username")
            || lowered.contains("could not read password") || lowered.contains("terminal prompts disabled")
            || lowered.contains("permission denied (publickey") || lowered.contains("401")
            || lowered.contains("403") || lowered.contains("invalid username or password")
        {
            reason = .authenticationFailed
        } else if lowered.contains("couldn't find remote ref") || lowered.contains("not our ref")
            || lowered.contains("unadvertised object") || lowered.contains("no such remote ref")
        {
            reason = .refNotFound
        } else {
            reason = .fetchFailed
        }
        if reason == .knownHostsMismatch { return hostKeyMismatch(text, doing: command, url: url) }
        let detail = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return GitFailure(
            reason: reason,
            message: "git \(command) \(GitCredentials.scrubURLPasswords(url)) failed (exit \(output.status))"
                + (detail.isEmpty ? "" : ": \(detail)"))
    }

    /// A host key that is not the one in `knownHosts`, said so that a person can act: which host, the key the
    /// server sent, and how to get its line. ssh's own advice (edit a temporary known_hosts file) is left out.
    static func hostKeyMismatch(_ text: String, doing command: String, url: String) -> GitFailure {
        // ssh ends its lines with CRLF: one Character in Swift, so split on any line break.
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        let said = lines.filter {
            let lowered = $0.lowercased()
            return lowered.contains("host key") && !lowered.hasPrefix("add correct") && !lowered.hasPrefix("offending")
        }
        var sent = ""
        let pattern = try? NSRegularExpression(
            pattern: "for the (\\S+) key sent by the remote host is\\s+(SHA256:[A-Za-z0-9+/=]+)")
        if let match = pattern?.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
            let key = Range(match.range(at: 1), in: text), let fingerprint = Range(match.range(at: 2), in: text)
        {
            sent = " The server sent the \(text[key]) key \(text[fingerprint])."
        }
        let (host, port) = sshHost(of: url)
        let scan = port.map { "ssh-keyscan -p \($0) \(host)" } ?? "ssh-keyscan \(host)"
        return GitFailure(
            reason: .knownHostsMismatch,
            message: "git \(command) \(GitCredentials.scrubURLPasswords(url)) refused the server: its SSH host key is "
                + "not the one for \(port.map { "[\(host)]:\($0)" } ?? host) in the knownHosts key of the "
                + "spec.secretRef Secret.\(sent) If the server's key changed on purpose, put its current line "
                + "(`\(scan)`, checked against the server's published fingerprint) in knownHosts; if not, someone "
                + "may be intercepting the connection. ssh said: " + said.joined(separator: " "))
    }

    /// The host and port of `ssh://user@host:port/path` (port nil when absent) or of `user@host:path`.
    static func sshHost(of url: String) -> (host: String, port: String?) {
        if let components = URLComponents(string: url), components.scheme == "ssh", let host = components.host {
            return (host, components.port.map(String.init))
        }
        let authority = url.split(separator: ":").first.map(String.init) ?? url
        return (String(authority.split(separator: "@").last ?? Substring(authority)), nil)
    }
}
