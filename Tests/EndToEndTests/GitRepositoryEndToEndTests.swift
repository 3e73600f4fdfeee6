import Foundation
import SteadyTesting
import Testing

/// GitRepository sources against real git servers on loopback (`git daemon`, `file://`, smart HTTP with basic or
/// bearer authentication, `sshd`), followed by a real controller process.
@Suite(.serialized, .timeLimit(.minutes(5))) struct GitRepositoryEndToEndTests {
    static func action(_ name: String, type: String = "stdout") -> String {
        "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: \(name)}\nspec: {type: \(type)}\n"
    }

    static func repository(
        _ name: String, url: String, ref: String = "{branch: main}", path: String = "manifests",
        interval: String = "1s", extra: String = ""
    ) -> String {
        """
        apiVersion: steady.dev/v1
        kind: GitRepository
        metadata: {name: \(name)}
        spec:
          url: \(url)
          ref: \(ref)
          path: \(path)
          interval: \(interval)
        \(extra)
        """
    }

    func names(_ controller: ControllerProcess, _ kind: String = "actions") throws -> Set<String> {
        let result = try controller.run("steady", ["get", kind, "-o", "name"])
        return Set(result.output.split(separator: "\n").map { String($0.split(separator: "/").last ?? "") })
    }

    /// The GitRepository as JSON.
    func source(_ controller: ControllerProcess, _ name: String) throws -> [String: Any] {
        let result = try controller.run("steady", ["get", "gitrepository", name, "-o", "json"])
        return (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [String: Any] ?? [:]
    }

    func status(_ controller: ControllerProcess, _ name: String) throws -> [String: Any] {
        try source(controller, name)["status"] as? [String: Any] ?? [:]
    }

    /// The condition of `type`: (status, reason, message).
    func condition(_ controller: ControllerProcess, _ name: String, _ type: String = "Ready") throws
        -> (status: String, reason: String, message: String)?
    {
        let conditions = try status(controller, name)["conditions"] as? [[String: Any]] ?? []
        guard let found = conditions.first(where: { $0["type"] as? String == type }) else { return nil }
        return (
            found["status"] as? String ?? "", found["reason"] as? String ?? "", found["message"] as? String ?? ""
        )
    }

    func revision(_ controller: ControllerProcess, _ name: String) throws -> String? {
        (try status(controller, name)["artifact"] as? [String: Any])?["revision"] as? String
    }

    func fetches(_ controller: ControllerProcess) -> Int {
        controller.log().components(separatedBy: "steady.git.command=fetch").count - 1
    }

    @Test func followsABranchOverGitDaemonKeepingTheLastGoodStateAndBlockingEmptyPrunes() throws {
        let git = try GitFixture()
        defer { git.remove() }
        try git.write(Self.action("first"), to: "manifests/first.yaml")
        try git.write(Self.action("second"), to: "manifests/more/second.yaml")
        try git.write("not a manifest\n", to: "README.md")
        let first = try git.commit("first")
        let url = try git.startDaemon()
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        try controller.apply(Self.repository("fleet", url: url))

        // A first sync, with the revision, the inventory and the webhook path in status.
        #expect(try eventually { try names(controller) == ["first", "second"] }, "\(controller.log())")
        #expect(try eventually { try revision(controller, "fleet") == "main@sha1:\(first)" })
        var status = try status(controller, "fleet")
        #expect(status["lastAppliedRevision"] as? String == "main@sha1:\(first)")
        #expect(status["webhookPath"] as? String == "/hooks/gitrepositories/fleet")
        #expect((status["inventory"] as? [Any])?.count == 2)
        #expect(try condition(controller, "fleet")?.status == "True")

        // A change, an addition and a removal in one commit.
        try git.write(
            "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: first}\nspec: {type: file, file: {path: /tmp/x}}\n",
            to: "manifests/first.yaml")
        try git.write(Self.action("third"), to: "manifests/third.yaml")
        try git.remove("manifests/more/second.yaml")
        let second = try git.commit("change, add, remove")
        #expect(try eventually { try names(controller) == ["first", "third"] }, "\(controller.log())")
        #expect(try controller.run("steady", ["get", "action", "first", "-o", "json"]).output.contains("/tmp/x"))
        #expect(try eventually { try revision(controller, "fleet") == "main@sha1:\(second)" })

        // A broken commit is refused whole and named in status; the last good state stays.
        try git.write(
            "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: broken}\nspec: {typo: 1}\n",
            to: "manifests/broken.yaml")
        try git.write(Self.action("fourth"), to: "manifests/fourth.yaml")
        let broken = try git.commit("broken")
        #expect(
            try eventually { try condition(controller, "fleet")?.reason == "InvalidManifests" }, "\(controller.log())")
        let refusal = try condition(controller, "fleet")
        #expect(refusal?.status == "False")
        #expect(refusal?.message.contains("manifests/broken.yaml: document 1") == true, "\(refusal?.message ?? "")")
        #expect(refusal?.message.contains(String(broken.prefix(12))) == true)
        #expect(try names(controller) == ["first", "third"])
        status = try self.status(controller, "fleet")
        #expect(status["lastAppliedRevision"] as? String == "main@sha1:\(second)")
        #expect(status["lastAttemptedRevision"] as? String == "main@sha1:\(broken)")

        // The fix applies everything.
        try git.remove("manifests/broken.yaml")
        let fixed = try git.commit("fix")
        #expect(try eventually { try names(controller) == ["first", "third", "fourth"] }, "\(controller.log())")
        #expect(try eventually { try condition(controller, "fleet")?.reason == "Applied" })
        #expect(try self.status(controller, "fleet")["lastAppliedRevision"] as? String == "main@sha1:\(fixed)")

        // An emptied path prunes nothing: PruneBlocked until it is back.
        try git.remove("manifests")
        _ = try git.commit("empty the path")
        #expect(try eventually { try condition(controller, "fleet")?.reason == "PruneBlocked" }, "\(controller.log())")
        #expect(try names(controller) == ["first", "third", "fourth"])
        try git.write(Self.action("first"), to: "manifests/first.yaml")
        _ = try git.commit("back")
        #expect(try eventually { try names(controller) == ["first"] }, "\(controller.log())")
    }

    @Test func followsTagsSemverRangesAndPinnedCommitsAndAppliesSpecEditsAtOnce() throws {
        let git = try GitFixture()
        defer { git.remove() }
        try git.write(Self.action("one"), to: "manifests/one.yaml")
        let one = try git.commit("one")
        try git.tag("v1.0.0")
        try git.write(Self.action("two"), to: "manifests/two.yaml")
        try git.commit("two")
        try git.tag("v1.2.0")
        try git.write(Self.action("three"), to: "manifests/three.yaml")
        try git.commit("three")
        try git.tag("v2.0.0")
        try git.write(Self.action("four"), to: "manifests/four.yaml")
        try git.commit("four, untagged")
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()

        // A tag; then, with an hour's interval, each spec edit is applied at once.
        try controller.apply(Self.repository("tagged", url: git.fileURL, ref: "{tag: v1.0.0}", interval: "1h"))
        #expect(try eventually { try names(controller) == ["one"] }, "\(controller.log())")
        #expect(try revision(controller, "tagged") == "v1.0.0@sha1:\(one)")

        try controller.apply(
            Self.repository("tagged", url: git.fileURL, ref: "{semver: \">=1.0.0 <2.0.0\"}", interval: "1h"))
        #expect(try eventually { try names(controller) == ["one", "two"] }, "\(controller.log())")
        #expect(try revision(controller, "tagged")?.hasPrefix("v1.2.0@sha1:") == true)

        try controller.apply(Self.repository("tagged", url: git.fileURL, ref: "{commit: \(one)}", interval: "1h"))
        #expect(try eventually { try names(controller) == ["one"] }, "\(controller.log())")
        #expect(try revision(controller, "tagged") == "sha1:\(one)")

        // A ref that does not exist says so.
        try controller.apply(Self.repository("tagged", url: git.fileURL, ref: "{tag: v9.9.9}", interval: "1h"))
        #expect(try eventually { try condition(controller, "tagged")?.reason == "RefNotFound" }, "\(controller.log())")
        #expect(try names(controller) == ["one"])
    }

    @Test func reconcileWebhooksAndTwoSourcesOnOneURLFetchingOnce() throws {
        let git = try GitFixture()
        defer { git.remove() }
        try git.write(Self.action("alpha-1"), to: "a/one.yaml")
        try git.write(Self.action("beta-1"), to: "b/one.yaml")
        try git.commit("first")
        let url = try git.startDaemon()
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start(extraArguments: ["--log-level", "debug"])
        try controller.apply(
            """
            apiVersion: steady.dev/v1
            kind: Secret
            metadata: {name: hook}
            stringData: {token: s3cret-hook-token}
            ---
            \(Self.repository("alpha", url: url, path: "a", interval: "1h"))
            ---
            \(Self.repository("beta", url: url, path: "b", interval: "1h", extra: "  webhook: {secretRef: {name: hook}}"))
            """)
        #expect(try eventually { try names(controller) == ["alpha-1", "beta-1"] }, "\(controller.log())")
        // Two sources on one URL at one commit: one fetch.
        #expect(fetches(controller) == 1, "\(controller.log())")

        // steady reconcile syncs now and waits for the result.
        try git.write(Self.action("alpha-2"), to: "a/two.yaml")
        try git.write(Self.action("beta-2"), to: "b/two.yaml")
        try git.commit("second")
        let reconcile = try controller.run("steady", ["reconcile", "gitrepository/alpha", "--timeout", "60s"])
        #expect(reconcile.status == 0, "\(reconcile)")
        #expect(reconcile.output.contains("reconciled"), "\(reconcile)")
        #expect(try names(controller).contains("alpha-2"))
        #expect(try !names(controller).contains("beta-2"))

        // A webhook: missing and wrong signatures are refused; the right one syncs at once.
        let hook = "https://127.0.0.1:\(controller.port)/hooks/gitrepositories/beta"
        let body = #"{"ref":"refs/heads/main"}"#
        func post(_ headers: [String]) throws -> String {
            let arguments = ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data", body]
                + headers.flatMap { ["-H", $0] } + [hook]
            return try CommandResult.run("/usr/bin/curl", arguments).output
        }
        #expect(try post([]) == "401")
        #expect(try post(["X-Hub-Signature-256: sha256=0000"]) == "401")
        #expect(try post(["X-Gitlab-Token: wrong"]) == "401")
        let signature = try CommandResult.run(
            "/usr/bin/env",
            ["python3", "-c",
             "import hmac,hashlib,sys;print(hmac.new(b's3cret-hook-token',sys.argv[1].encode(),hashlib.sha256).hexdigest())",
             body]
        ).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try post(["X-Hub-Signature-256: sha256=\(signature)"]) == "202")
        #expect(try eventually { try names(controller).contains("beta-2") }, "\(controller.log())")
        // The second commit was fetched once, for both sources.
        #expect(fetches(controller) == 2, "\(controller.log())")
    }

    /// The ApplySet an Action belongs to (its `applyset.kubernetes.io/part-of` label).
    func partOf(_ controller: ControllerProcess, _ name: String) throws -> String? {
        let result = try controller.run("steady", ["get", "action", name, "-o", "json"])
        let object = (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [String: Any]
        let labels = (object?["metadata"] as? [String: Any])?["labels"] as? [String: Any]
        return labels?["applyset.kubernetes.io/part-of"] as? String
    }

    @Test func anObjectClaimedByTwoSourcesIsAConflictOnBothNeverAFlipFlop() throws {
        let git = try GitFixture()
        defer { git.remove() }
        try git.write(Self.action("shared"), to: "a/shared.yaml")
        try git.write(Self.action("only-a"), to: "a/only.yaml")
        try git.write(Self.action("shared"), to: "b/shared.yaml")
        try git.write(Self.action("only-b"), to: "b/only.yaml")
        try git.commit("both declare shared")
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start()
        try controller.apply(Self.repository("owner", url: git.fileURL, path: "a"))
        #expect(try eventually { try names(controller) == ["shared", "only-a"] }, "\(controller.log())")
        let ownerSet = try partOf(controller, "shared")
        #expect(ownerSet != nil)

        // The second source applies the rest, and both say who else declares "shared".
        try controller.apply(Self.repository("claimant", url: git.fileURL, path: "b"))
        #expect(try eventually { try names(controller) == ["shared", "only-a", "only-b"] }, "\(controller.log())")
        #expect(
            try eventually { try condition(controller, "claimant")?.reason == "OwnershipConflict" },
            "\(controller.log())")
        #expect(
            try condition(controller, "claimant")?.message.contains(
                "Action/shared is managed by another source, gitrepository/owner") == true)
        #expect(
            try eventually { try condition(controller, "owner", "Conflicted")?.status == "True" },
            "\(controller.log())")
        let reported = try condition(controller, "owner", "Conflicted")
        #expect(reported?.reason == "OwnershipConflict")
        #expect(reported?.message.contains("gitrepository/claimant also declares Action/shared") == true)
        #expect(try condition(controller, "owner")?.status == "True")
        let conflicts = try status(controller, "owner")["conflicts"] as? [[String: String]]
        #expect(conflicts == [["kind": "Action", "name": "shared", "source": "claimant"]])

        // The claimant tries again on its interval, and the object stays the owner's.
        func attempted() throws -> String? {
            (try status(controller, "claimant")["artifact"] as? [String: Any])?["lastUpdateTime"] as? String
        }
        let before = try attempted()
        #expect(try eventually { try attempted() != before }, "\(controller.log())")
        #expect(try partOf(controller, "shared") == ownerSet)
        #expect(try condition(controller, "owner", "Conflicted")?.status == "True")

        // The owner lets it go: it prunes it, the claimant takes it, and the conflict is gone from both.
        try git.remove("a/shared.yaml")
        try git.commit("a no longer declares shared")
        #expect(try eventually { try condition(controller, "claimant")?.reason == "Applied" }, "\(controller.log())")
        #expect(try eventually { try condition(controller, "owner", "Conflicted") == nil }, "\(controller.log())")
        #expect(try status(controller, "owner")["conflicts"] == nil)
        #expect(try eventually { try partOf(controller, "shared").map { $0 != ownerSet } ?? false })
    }

    @Test func theGitFlagDeclaresASourceAtStart() throws {
        let git = try GitFixture()
        defer { git.remove() }
        try git.write(Self.action("flagged"), to: "deploy/flagged.yaml")
        let commit = try git.commit("first")
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start(extraArguments: ["--git", git.fileURL, "--git-ref", "main", "--git-path", "deploy"])
        #expect(try eventually { try names(controller) == ["flagged"] }, "\(controller.log())")
        #expect(try eventually { try revision(controller, "git") == "main@sha1:\(commit)" })
    }

    /// A Secret as JSON (valid YAML), so that multi-line values such as a private key need no quoting.
    static func secret(_ name: String, _ values: [String: String]) throws -> String {
        let object: [String: Any] = [
            "apiVersion": "steady.dev/v1", "kind": "Secret", "metadata": ["name": name], "stringData": values,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    @Test(
        .enabled(
            if: GitFixture.sshUnavailableReason == nil,
            Comment(rawValue: "skipped: sshd cannot serve this test: \(GitFixture.sshUnavailableReason ?? "")")))
    func sshWithAKeyAndKnownHostsAndAWrongKnownHosts() throws {
        let git = try GitFixture()
        // Stops sshd (and its children) whatever happens below.
        defer { git.remove() }
        try git.write(Self.action("over-ssh"), to: "manifests/over-ssh.yaml")
        let commit = try git.commit("first")
        let ssh = try git.startSSH()
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start(extraArguments: ["--log-level", "debug"])
        try controller.apply(
            [
                try Self.secret("ssh-good", ["identity": ssh.identity, "knownHosts": ssh.knownHosts]),
                try Self.secret("ssh-wrong-host", ["identity": ssh.identity, "knownHosts": ssh.wrongKnownHosts]),
                Self.repository("over-ssh", url: ssh.url, extra: "  secretRef: {name: ssh-good}"),
                Self.repository("wrong-host", url: ssh.url, extra: "  secretRef: {name: ssh-wrong-host}"),
            ].joined(separator: "\n---\n"))

        // A first sync over SSH, with the key and known_hosts of the Secret.
        #expect(try eventually { try names(controller) == ["over-ssh"] }, "\(controller.log())\n\(git.serversLog)")
        #expect(try eventually { try revision(controller, "over-ssh") == "main@sha1:\(commit)" })
        #expect(git.serversLog.contains("Accepted publickey for root"), "\(git.serversLog)")

        // Another host key: KnownHostsMismatch and Stalled, with a message that names the host and what to do.
        #expect(
            try eventually { try condition(controller, "wrong-host")?.reason == "KnownHostsMismatch" },
            "\(controller.log())")
        let mismatch = try condition(controller, "wrong-host")
        #expect(mismatch?.status == "False")
        let port = String(ssh.url.split(separator: ":")[2].prefix { $0.isNumber })
        #expect(mismatch?.message.contains("[127.0.0.1]:\(port)") == true, "\(mismatch?.message ?? "")")
        #expect(mismatch?.message.contains("ssh-keyscan -p \(port) 127.0.0.1") == true, "\(mismatch?.message ?? "")")
        #expect(mismatch?.message.contains("ED25519 key SHA256:") == true, "\(mismatch?.message ?? "")")
        #expect(try condition(controller, "wrong-host", "Stalled")?.status == "True")

        // No key material anywhere: not the key, not a line of it, not a credentials file's path.
        let everything = try controller.log() + String(describing: status(controller, "wrong-host"))
            + String(describing: status(controller, "over-ssh"))
        let keyLines = ssh.identity.split(separator: "\n").filter { !$0.hasPrefix("-----") }
        #expect(!keyLines.isEmpty)
        for line in keyLines { #expect(!everything.contains(line)) }
        #expect(!everything.contains("credentials-"), "\(everything)")
    }

    @Test func bearerTokensOverSmartHTTP() throws {
        let git = try GitFixture()
        defer { git.remove() }
        try git.write(Self.action("bearer"), to: "manifests/bearer.yaml")
        let commit = try git.commit("first")
        let token = "tok-correct-7f3a9c1e5b"
        let wrong = "tok-wrong-0d4e8b2a6c"
        let url = try git.startHTTP(bearerToken: token)
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start(extraArguments: ["--log-level", "debug"])
        try controller.apply(
            [
                try Self.secret("token-good", ["bearerToken": token]),
                try Self.secret("token-bad", ["bearerToken": wrong]),
                Self.repository("bearer", url: url, extra: "  secretRef: {name: token-good}"),
                Self.repository("bearer-wrong", url: url, extra: "  secretRef: {name: token-bad}"),
            ].joined(separator: "\n---\n"))

        // The good token syncs: the server saw it as a bearer Authorization header.
        #expect(try eventually { try names(controller) == ["bearer"] }, "\(controller.log())")
        #expect(try eventually { try revision(controller, "bearer") == "main@sha1:\(commit)" })
        #expect(git.httpLog.contains("auth=Bearer \(token)"), "\(git.httpLog)")

        // A wrong token: AuthenticationFailed and Stalled, and neither token in any log or status.
        #expect(
            try eventually { try condition(controller, "bearer-wrong")?.reason == "AuthenticationFailed" },
            "\(controller.log())")
        #expect(try condition(controller, "bearer-wrong", "Stalled")?.status == "True")
        #expect(git.httpLog.contains("auth=Bearer \(wrong)"), "\(git.httpLog)")
        let everything = try controller.log() + String(describing: status(controller, "bearer-wrong"))
            + String(describing: status(controller, "bearer"))
        #expect(!everything.contains(token))
        #expect(!everything.contains(wrong))
    }

    @Test func basicAuthenticationWrongPasswordsAndTimeouts() throws {
        let git = try GitFixture()
        defer { git.remove() }
        try git.write(Self.action("private"), to: "manifests/private.yaml")
        try git.commit("first")
        let password = "hunter2-correct-horse"
        let wrong = "wrong-battery-staple"
        let url = try git.startHTTP(username: "git", password: password)
        let silent = try git.startSilentServer()
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start(extraArguments: ["--log-level", "debug"])
        try controller.apply(
            """
            apiVersion: steady.dev/v1
            kind: Secret
            metadata: {name: good}
            stringData: {username: git, password: \(password)}
            ---
            apiVersion: steady.dev/v1
            kind: Secret
            metadata: {name: bad}
            stringData: {username: git, password: \(wrong)}
            ---
            \(Self.repository("private", url: url, extra: "  secretRef: {name: good}"))
            ---
            \(Self.repository("wrong", url: url, path: "manifests", extra: "  secretRef: {name: bad}"))
            ---
            \(Self.repository("silent", url: silent, extra: "  timeout: 2s"))
            """)
        #expect(try eventually { try names(controller) == ["private"] }, "\(controller.log())")
        #expect(git.httpLog.contains("auth=Basic"), "\(git.httpLog)")

        // A wrong password: AuthenticationFailed and Stalled, and the password nowhere.
        #expect(
            try eventually { try condition(controller, "wrong")?.reason == "AuthenticationFailed" },
            "\(controller.log())")
        #expect(try condition(controller, "wrong", "Stalled")?.status == "True")
        let everything = try controller.log() + String(describing: status(controller, "wrong"))
        #expect(!everything.contains(wrong))
        #expect(!everything.contains(password))

        // A server that never answers: Timeout, and git's process group is gone.
        #expect(try eventually { try condition(controller, "silent")?.reason == "Timeout" }, "\(controller.log())")
        let port = String(silent.split(separator: ":").last?.split(separator: "/").first ?? "")
        let leftovers = try CommandResult.run("/usr/bin/pgrep", ["-f", "127.0.0.1:\(port)"])
        #expect(leftovers.output.isEmpty, "\(leftovers)")
    }
}
