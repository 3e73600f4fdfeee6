import Foundation
import Resources
import Testing

@testable import Reconciler

/// The decisions of one GitRepository's state machine, without git, sockets or clocks.
@Suite struct GitSourceStateTests {
    let spec = GitRepositorySpec(url: "git://example/fleet.git", ref: .init(branch: "main"))
    let now = ContinuousClock.now

    @Test func aNewSourceSyncsAtOnceAndItsOwnStatusWritesDoNot() {
        var state = GitSourceState()
        let first = state.observe(spec: spec, generation: 1, requestedAt: nil, status: nil)
        #expect(first == .init(isForced: true, request: nil))
        _ = state.finished(first!, result: .attempted(commit: "aaa"), now: now, jitter: 0.5)
        // The status write that follows comes back as a change of the same generation: nothing to do.
        #expect(state.observe(spec: spec, generation: 1, requestedAt: nil, status: nil) == nil)
        #expect(state.nextPoll == now + .seconds(60))
    }

    @Test func statusWritesWhileTheFirstSyncRunsDoNotQueueAnother() {
        var state = GitSourceState()
        let first = state.observe(spec: spec, generation: 1, requestedAt: nil, status: nil)!
        // The sync's own "Reconciling" write comes back while it runs.
        #expect(state.observe(spec: spec, generation: 1, requestedAt: nil, status: nil) == nil)
        #expect(state.finished(first, result: .attempted(commit: "aaa"), now: now, jitter: 0) == nil)
        // An edit while a sync runs is queued, and runs next.
        let poll = state.pollDue(now: now + .seconds(120))!
        var edited = spec
        edited.path = "other"
        #expect(state.observe(spec: edited, generation: 2, requestedAt: nil, status: nil) == nil)
        #expect(state.finished(poll, result: .attempted(commit: "aaa"), now: now, jitter: 0)?.isForced == true)
    }

    @Test func aPollThatFindsTheSameCommitAppliesNothingUnlessGitFailedLastTime() {
        var state = GitSourceState()
        let first = state.observe(spec: spec, generation: 1, requestedAt: nil, status: nil)!
        _ = state.finished(first, result: .attempted(commit: "aaa"), now: now, jitter: 0)
        let poll = state.pollDue(now: now + .seconds(120))!
        #expect(!poll.isForced)
        #expect(!state.needsApply(poll, commit: "aaa"))
        #expect(state.needsApply(poll, commit: "bbb"))
        _ = state.finished(poll, result: .gitFailed, now: now, jitter: 0)
        let retry = state.pollDue(now: now + .seconds(240))!
        #expect(state.needsApply(retry, commit: "aaa"))
    }

    @Test func anApplyThatFailedIsRetriedOnTheNextPollButAnInvalidCommitIsNot() {
        var state = GitSourceState()
        let first = state.observe(spec: spec, generation: 1, requestedAt: nil, status: nil)!
        // An object another source manages: the next poll tries the same commit again (the other source may
        // have let it go), never taking it over meanwhile (the applier refuses).
        _ = state.finished(first, result: .applyFailed(commit: "aaa"), now: now, jitter: 0)
        let retry = state.pollDue(now: now + .seconds(120))!
        #expect(state.needsApply(retry, commit: "aaa"))
        // Applied (or refused as invalid, which `.attempted` stands for too): the same commit is left alone.
        _ = state.finished(retry, result: .attempted(commit: "aaa"), now: now, jitter: 0)
        let poll = state.pollDue(now: now + .seconds(240))!
        #expect(!state.needsApply(poll, commit: "aaa"))
    }

    @Test func specEditsAndRequestsSyncAtOnceWhateverTheRevision() {
        var state = GitSourceState()
        let first = state.observe(spec: spec, generation: 1, requestedAt: nil, status: nil)!
        _ = state.finished(first, result: .attempted(commit: "aaa"), now: now, jitter: 0)
        var edited = spec
        edited.path = "other"
        let edit = state.observe(spec: edited, generation: 2, requestedAt: nil, status: nil)
        #expect(edit?.isForced == true)
        #expect(state.needsApply(edit!, commit: "aaa"))
        _ = state.finished(edit!, result: .attempted(commit: "aaa"), now: now, jitter: 0)
        let request = state.observe(spec: edited, generation: 2, requestedAt: "t1", status: nil)
        #expect(request == .init(isForced: true, request: "t1"))
        _ = state.finished(request!, result: .attempted(commit: "aaa"), now: now, jitter: 0)
        #expect(state.observe(spec: edited, generation: 2, requestedAt: "t1", status: nil) == nil)
    }

    @Test func aBurstOfWebhooksRunsOneSyncAndQueuesOne() {
        var state = GitSourceState()
        let first = state.observe(spec: spec, generation: 1, requestedAt: nil, status: nil)!
        for _ in 0..<50 { #expect(state.webhook() == nil) }
        let next = state.finished(first, result: .attempted(commit: "aaa"), now: now, jitter: 0)
        #expect(next == .init(isForced: false, request: nil))
        #expect(state.finished(next!, result: .attempted(commit: "aaa"), now: now, jitter: 0) == nil)
    }

    @Test func aSuspendedSourceNeitherSyncsNorPolls() {
        var state = GitSourceState()
        var suspended = spec
        suspended.suspend = true
        #expect(state.observe(spec: suspended, generation: 1, requestedAt: nil, status: nil) == nil)
        #expect(state.webhook() == nil)
        #expect(state.nextPoll == nil)
    }

    @Test func aRestartResumesFromTheStatusWithoutReapplying() {
        var state = GitSourceState()
        var status = GitRepositorySpec.Status()
        status.observedGeneration = 3
        status.lastAttemptedRevision = "main@sha1:aaa"
        let sync = state.observe(spec: spec, generation: 3, requestedAt: nil, status: status)
        #expect(sync == .init(isForced: false, request: nil))
        #expect(!state.needsApply(sync!, commit: "aaa"))
    }
}

/// Versions and ranges for `ref.semver`.
@Suite struct SemanticVersionTests {
    @Test func theHighestMatchingTagWins() throws {
        let tags = ["v1.0.0", "v1.2.0", "v1.10.1", "v2.0.0", "v1.11.0-rc.1", "latest"].compactMap(SemanticVersion.init)
        #expect(SemanticVersionRange(">=1.0.0 <2.0.0")?.highest(in: tags)?.description == "1.10.1")
        #expect(SemanticVersionRange("1.x")?.highest(in: tags)?.description == "1.10.1")
        #expect(SemanticVersionRange("~1.2")?.highest(in: tags)?.description == "1.2.0")
        #expect(SemanticVersionRange("^1.0.0")?.highest(in: tags)?.description == "1.10.1")
        #expect(SemanticVersionRange("*")?.highest(in: tags)?.description == "2.0.0")
        #expect(SemanticVersionRange(">=1.11.0-rc.0 <2.0.0")?.highest(in: tags)?.description == "1.11.0-rc.1")
        #expect(SemanticVersionRange(">=3.0.0")?.highest(in: tags) == nil)
        #expect(SemanticVersionRange("nonsense") == nil)
    }
}

/// Webhook authentication: GitHub, GitLab and a generic HMAC header.
@Suite struct GitWebhookSignatureTests {
    let body = Data(#"{"ref":"refs/heads/main"}"#.utf8)

    @Test func onlyTheRightSignatureOrTokenPasses() {
        let good = GitWebhookSignature.signature(of: body, token: "s3cret")
        func check(_ headers: [String: String], token: String = "s3cret") -> Bool {
            GitWebhookSignature.isValid(body: body, token: token) { headers[$0] }
        }
        #expect(check(["X-Hub-Signature-256": good]))
        #expect(check(["X-Signature-256": good]))
        #expect(check(["X-Gitlab-Token": "s3cret"]))
        #expect(!check([:]))
        #expect(!check(["X-Hub-Signature-256": "sha256=00"]))
        #expect(!check(["X-Hub-Signature-256": GitWebhookSignature.signature(of: Data("other".utf8), token: "s3cret")]))
        #expect(!check(["X-Gitlab-Token": "s3cre"]))
        #expect(!check(["X-Hub-Signature-256": good], token: ""))
    }
}

/// The hardened git runner: credentials, timeouts, a missing git.
@Suite(.timeLimit(.minutes(1))) struct GitCommandRunnerTests {
    func runner(_ executable: String?, home: URL) -> GitCommandRunner {
        GitCommandRunner(executable: executable, home: home, counter: GitCommandCounter(), logger: .init(label: "test"))
    }

    @Test func aMissingGitIsGitUnavailable() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("git-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        await #expect(throws: GitFailure.self) {
            try await runner(nil, home: directory).run(["ls-remote", "x"], credentials: .none, timeout: .seconds(5))
        }
        do {
            _ = try await runner(nil, home: directory).run(["version"], credentials: .none, timeout: .seconds(5))
        } catch {
            #expect(error.reason == .gitUnavailable)
        }
    }

    @Test func aTimeoutKillsTheWholeProcessGroup() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("git-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A "git" that starts a child and waits for it, as git waits for ssh or a remote helper.
        let fake = directory.appendingPathComponent("git")
        let pidFile = directory.appendingPathComponent("child.pid")
        try "#!/bin/sh\nsleep 300 &\necho $! > \(pidFile.path)\nwait\n".write(to: fake, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
        var reason: GitSourceReason?
        do {
            _ = try await runner(fake.path, home: directory).run(["fetch"], credentials: .none, timeout: .seconds(1))
        } catch {
            reason = error.reason
        }
        #expect(reason == .timeout)
        let child = try #require(Int32(String(contentsOf: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // The child was in git's process group: it is gone (or a zombie about to be reaped by init).
        var isGone = false
        for _ in 0..<50 where !isGone {
            let state = (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8)) ?? ""
            isGone = state.isEmpty || state.contains(") Z ")
            if !isGone { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(isGone)
    }

    @Test func credentialsStayOutOfArgvAndAreScrubbed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("git-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let basic = try GitCredentials.make(
            url: "https://git.example/fleet.git", secret: ["username": "me", "password": "hunter2-pass"],
            parent: directory)
        defer { basic.remove() }
        let askpass = try #require(basic.environment["GIT_ASKPASS"])
        #expect(!basic.environment.values.contains { $0.contains("hunter2-pass") })
        let folder = try #require(basic.directory)
        let mode = try FileManager.default.attributesOfItem(atPath: folder.path)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        let passwordMode = try FileManager.default.attributesOfItem(
            atPath: folder.appendingPathComponent("password").path)[.posixPermissions] as? Int
        #expect(passwordMode == 0o600)
        #expect(FileManager.default.isExecutableFile(atPath: askpass))
        #expect(basic.scrub("fatal: Authentication failed for hunter2-pass") == "fatal: Authentication failed for ***")
        #expect(GitCredentials.scrubURLPasswords("https://me:pw@host/x") == "https://me:***@host/x")
        basic.remove()
        #expect(!FileManager.default.fileExists(atPath: folder.path))

        let ssh = try GitCredentials.make(
            url: "ssh://git@host/fleet.git", secret: ["identity": "KEY", "knownHosts": "host ssh-ed25519 AAAA"],
            parent: directory)
        defer { ssh.remove() }
        let command = try #require(ssh.environment["GIT_SSH_COMMAND"])
        #expect(command.contains("StrictHostKeyChecking=yes"))
        #expect(!command.contains("KEY"))
        #expect(throws: GitFailure.self) {
            try GitCredentials.make(url: "ssh://git@host/x", secret: ["username": "u", "password": "p"], parent: directory)
        }
    }

    @Test func gitsMessagesAreNamed() {
        func reason(_ text: String) -> GitSourceReason {
            GitRepositoryCache.failure(
                GitOutput(status: 128, standardOutput: "", standardError: text), doing: "fetch", url: "u"
            ).reason
        }
        #expect(reason("fatal: Authentication failed for 'http://h/x'") == .authenticationFailed)
        #expect(reason("fatal: could not read Username for 'https://h': terminal prompts disabled") == .authenticationFailed)
        #expect(reason("Host key verification failed.") == .knownHostsMismatch)
        #expect(reason("fatal: couldn't find remote ref refs/heads/nope") == .refNotFound)
        #expect(reason("fatal: unable to connect to h") == .fetchFailed)
    }

    @Test func aHostKeyMismatchNamesTheHostTheKeySentAndWhatToDo() {
        // What OpenSSH 9 prints when known_hosts holds another key for the host, with its CRLF line ends.
        let stderr = """
            @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
            @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
            @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
            IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
            The fingerprint for the ED25519 key sent by the remote host is
            SHA256:fH/EQhLEWFjj08Qkl29xEozvDIvfgLZXsG4V3z8MnZc.
            Please contact your system administrator.
            Add correct host key in /tmp/c/credentials-1/known_hosts to get rid of this message.
            Offending ED25519 key in /tmp/c/credentials-1/known_hosts:1
              remove with:
              ssh-keygen -f "/tmp/c/credentials-1/known_hosts" -R "[127.0.0.1]:2222"
            Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.
            Host key verification failed.
            fatal: Could not read from remote repository.
            """.replacingOccurrences(of: "\n", with: "\r\n")
        let failure = GitRepositoryCache.failure(
            GitOutput(status: 128, standardOutput: "", standardError: stderr), doing: "ls-remote",
            url: "ssh://git@127.0.0.1:2222/srv/fleet.git")
        #expect(failure.reason == .knownHostsMismatch)
        #expect(failure.message.contains("[127.0.0.1]:2222"), "\(failure.message)")
        #expect(failure.message.contains("ED25519 key SHA256:fH/EQhLEWFjj08Qkl29xEozvDIvfgLZXsG4V3z8MnZc."))
        #expect(failure.message.contains("ssh-keyscan -p 2222 127.0.0.1"), "\(failure.message)")
        #expect(failure.message.contains("Host key verification failed."))
        // ssh's advice to edit a temporary file is no use to a person: left out.
        #expect(!failure.message.contains("/tmp/c/credentials-1"), "\(failure.message)")
        #expect(GitRepositoryCache.sshHost(of: "git@github.com:org/repo.git") == ("github.com", nil))
    }

    @Test func aBearerTokenGoesThroughGitsEnvironmentConfigurationAndIsScrubbed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("git-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let bearer = try GitCredentials.make(
            url: "https://git.example/fleet.git", secret: ["bearerToken": "tok-0123456789"], parent: directory)
        defer { bearer.remove() }
        #expect(bearer.environment["GIT_CONFIG_COUNT"] == "1")
        #expect(bearer.environment["GIT_CONFIG_KEY_0"] == "http.extraHeader")
        #expect(bearer.environment["GIT_CONFIG_VALUE_0"] == "Authorization: Bearer tok-0123456789")
        // No file, and nothing else carries it (argv is built from fixed arguments and the URL alone).
        #expect(bearer.directory == nil)
        let carriers = bearer.environment.filter { $0.value.contains("tok-0123456789") }.keys.sorted()
        #expect(carriers == ["GIT_CONFIG_VALUE_0"])
        #expect(bearer.scrub("error: 401 for Bearer tok-0123456789") == "error: 401 for Bearer ***")
    }

    @Test func eachLineOfAnSSHKeyIsScrubbed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("git-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
            + "QyNTUxOQAAACBqZWxsbyB0aGlzIGlzIGEgdGVzdCBrZXk\n-----END OPENSSH PRIVATE KEY-----\n"
        let ssh = try GitCredentials.make(
            url: "ssh://git@host/fleet.git", secret: ["identity": key, "knownHosts": "host ssh-ed25519 AAAA"],
            parent: directory)
        defer { ssh.remove() }
        #expect(ssh.scrub("debug: QyNTUxOQAAACBqZWxsbyB0aGlzIGlzIGEgdGVzdCBrZXk") == "debug: ***")
    }

    @Test func tarEntriesCannotLeaveTheTree() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tar-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var header = [UInt8](repeating: 0, count: 512)
        for (index, byte) in "../escape.yaml".utf8.enumerated() { header[index] = byte }
        for (index, byte) in "00000000000\0".utf8.enumerated() { header[124 + index] = byte }
        header[156] = UInt8(ascii: "0")
        let archive = directory.appendingPathComponent("a.tar")
        try Data(header + [UInt8](repeating: 0, count: 1024)).write(to: archive)
        let tree = directory.appendingPathComponent("tree")
        #expect(throws: (any Error).self) { try TarExtractor.extract(archive: archive, into: tree) }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("escape.yaml").path))
    }
}
