import Foundation
import SteadyTesting
import Testing

/// What several controllers on one real etcd share besides objects and the lease: GitRepository sources that only
/// the leader follows, event counters that every replica adds to, TLS to etcd, join tokens that name every replica,
/// and run output read through any replica. Skipped, with a printed reason, when etcd is not installed.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EtcdReplicaEndToEndTests {
    /// Starts `count` controllers on `etcd` with a 2-second lease; returns them with a function printing their logs.
    static func replicas(
        _ count: Int, on etcd: EtcdServer, extraArguments: [String] = []
    ) throws -> (replicas: [ControllerProcess], logs: () -> String) {
        let replicas = try (0..<count).map { _ in try ControllerProcess() }
        for replica in replicas {
            try replica.start(
                extraArguments: ["--store", "etcd://\(etcd.endpoint)", "--leader-lease-seconds", "2"] + extraArguments,
                port: try EtcdServer.freePort())
        }
        let logs = { replicas.map { "\($0.server):\n\($0.log())" }.joined(separator: "\n") + "\netcd:\n\(etcd.log())" }
        return (replicas, logs)
    }

    /// The one replica whose log says it was elected, once exactly one says so.
    static func leader(of replicas: [ControllerProcess]) -> Int? {
        guard eventually(timeout: .seconds(20), { replicas.filter { $0.log().contains("elected leader") }.count == 1 })
        else { return nil }
        return replicas.firstIndex { $0.log().contains("elected leader") }
    }

    static func actionNames(_ controller: ControllerProcess) throws -> Set<String> {
        let result = try controller.run("steady", ["get", "actions", "-o", "name"])
        return Set(result.output.split(separator: "\n").map { String($0.split(separator: "/").last ?? "") })
    }

    /// Two replicas on `etcd` and an agent `web-1` that knows only the first, running `runCommand`; returns once the
    /// second replica lists the runner. The caller removes them.
    static func twoReplicasAndAnAgentOfTheFirst(
        on etcd: EtcdServer, runCommand: String
    ) throws -> (holder: ControllerProcess, other: ControllerProcess, agent: AgentProcess, logs: () -> String) {
        let (replicas, logs) = try Self.replicas(2, on: etcd)
        let agent = try AgentProcess(name: "web-1")
        try agent.start(controller: replicas[0], joinToken: try replicas[0].joinToken(), runCommand: runCommand)
        #expect(
            eventually(timeout: .seconds(30)) {
                (try? replicas[1].run("steady", ["get", "runners", "-o", "name"]).output.contains("web-1")) == true
            }, "\(agent.log())\n\(logs())")
        return (replicas[0], replicas[1], agent, logs)
    }

    /// The status of RemoteRun `name`, as `replica` shows it.
    static func runStatus(_ name: String, on replica: ControllerProcess) -> [String: Any] {
        let run = try? replica.run("steady", ["get", "remoterun", name, "-o", "json"])
        let object = try? JSONSerialization.jsonObject(with: Data((run?.output ?? "").utf8)) as? [String: Any]
        return object?["status"] as? [String: Any] ?? [:]
    }

    static func action(_ name: String) -> String {
        "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: \(name)}\nspec: {type: stdout}\n"
    }

    @Test func onlyTheLeaderFollowsGitRepositoriesAndTheNextLeaderGoesOn() throws {
        guard let curl = Binaries.onPath("curl") else { return }
        guard let etcd = try EtcdServer.start() else { return }
        defer { etcd.remove() }
        let git = try GitFixture()
        defer { git.remove() }
        try git.write(Self.action("first"), to: "manifests/first.yaml")
        let first = try git.commit("first")
        let (replicas, logs) = try Self.replicas(2, on: etcd)
        defer { replicas.forEach { $0.remove() } }
        let leaderIndex = try #require(Self.leader(of: replicas), "\(logs())")
        let (leader, follower) = (replicas[leaderIndex], replicas[1 - leaderIndex])

        // Applied through the follower, with an hour between polls: the leader syncs it at first sight.
        try follower.apply(
            """
            apiVersion: steady.dev/v1
            kind: Secret
            metadata: {name: hook}
            stringData: {token: s3cret}
            ---
            apiVersion: steady.dev/v1
            kind: GitRepository
            metadata: {name: fleet}
            spec:
              url: "\(git.fileURL)"
              ref: {branch: main}
              path: manifests
              interval: 1h
              webhook: {secretRef: {name: hook}}
            """)
        #expect(try eventually { try Self.actionNames(follower) == ["first"] }, "\(logs())")
        #expect(eventually { leader.log().contains("steady.revision=main@sha1:\(first)") }, "\(logs())")
        // The follower synced nothing itself (a controller that followed the source would have synced at first sight).
        #expect(!follower.log().contains("git source applied"), "\(logs())")

        // A webhook that reaches the follower is passed on to the leader, which syncs the new commit.
        try git.write(Self.action("second"), to: "manifests/second.yaml")
        let second = try git.commit("second")
        let hooked = try CommandResult.run(
            curl,
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", follower.dataDirectory.file("ca.crt").path,
                "-H", "X-Gitlab-Token: s3cret", "--data", "{}", "\(follower.server)/hooks/gitrepositories/fleet",
            ])
        #expect(hooked.output == "202", "\(hooked)")
        #expect(try eventually { try Self.actionNames(follower) == ["first", "second"] }, "\(logs())")
        // The sync logs its revision after applying it: the objects can be seen first.
        #expect(eventually { leader.log().contains("steady.revision=main@sha1:\(second)") }, "\(logs())")
        #expect(!follower.log().contains("git source applied"), "\(logs())")

        // SIGKILL of the leader: the follower is elected and follows the next commit.
        leader.stop(signal: SIGKILL)
        try git.write(Self.action("third"), to: "manifests/third.yaml")
        let third = try git.commit("third")
        #expect(eventually(timeout: .seconds(30)) { follower.log().contains("elected leader") }, "\(logs())")
        #expect(
            try eventually(timeout: .seconds(30)) { try Self.actionNames(follower) == ["first", "second", "third"] },
            "\(logs())")
        #expect(eventually { follower.log().contains("steady.revision=main@sha1:\(third)") }, "\(logs())")
    }

    static let placement = """
        apiVersion: steady.dev/v1
        kind: Action
        metadata: {name: notify}
        spec: {type: stdout}
        ---
        apiVersion: steady.dev/v1
        kind: Route
        metadata: {name: first}
        spec: {input: 'input.x == 1', actions: [notify]}
        ---
        apiVersion: steady.dev/v1
        kind: Assignment
        metadata: {name: placement}
        spec: {runnerSelector: {matchLabels: {role: web}}, routes: [first], actions: [notify]}
        """

    @Test func aJoinTokenNamingEveryReplicaIsEnoughForAnAgentToFailOver() throws {
        guard let etcd = try EtcdServer.start() else { return }
        defer { etcd.remove() }
        let (replicas, logs) = try Self.replicas(2, on: etcd)
        defer { replicas.forEach { $0.remove() } }
        let leaderIndex = try #require(Self.leader(of: replicas), "\(logs())")
        let (leader, survivor) = (replicas[leaderIndex], replicas[1 - leaderIndex])
        try leader.apply(Self.placement)

        // The token names both replicas, the leader first; the agent is given nothing else.
        let created = try leader.run(
            "steady", ["token", "create", "--ttl", "1h", "--controller", leader.server, "--controller", survivor.server])
        #expect(created.status == 0, "\(created)")
        let token = created.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.hasSuffix("::\(leader.server),\(survivor.server)"), "\(token)")
        let agent = try AgentProcess(name: "web-1")
        defer { agent.remove() }
        try agent.start(controller: leader, joinToken: token, labels: ["role": "web"], controllerURLs: "")
        #expect(eventually(timeout: .seconds(30)) { agent.sliceKeys() == ["Route/first", "Action/notify"] }, "\(agent.log())")

        // The replica it enrolled with dies; it follows the other one, which the token alone told it of.
        leader.stop(signal: SIGKILL)
        try survivor.apply(
            Self.placement.replacingOccurrences(of: "routes: [first]", with: "routes: [first, second]")
                + "\n---\napiVersion: steady.dev/v1\nkind: Route\nmetadata: {name: second}\nspec: {actions: [notify]}\n")
        #expect(
            eventually(timeout: .seconds(40)) { agent.sliceKeys() == ["Route/first", "Route/second", "Action/notify"] },
            "\(agent.log())\n\(logs())")
    }

    @Test func controllersReachEtcdOverTLSAndAWrongCertificateIsNamed() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        guard let etcd = try EtcdServer.start(tls: certificates) else { return }
        defer { etcd.remove() }
        let store = ["--store", "etcd://\(etcd.endpoint)", "--leader-lease-seconds", "2"]
        let clientFiles = ["--etcd-cert", certificates.clientCertificate, "--etcd-key", certificates.clientKey]

        // With the CA and a client certificate, the controller works through TLS: it leads and reconciles.
        let controller = try ControllerProcess()
        defer { controller.remove() }
        try controller.start(extraArguments: store + ["--etcd-cacert", certificates.caCertificate] + clientFiles)
        #expect(eventually { controller.log().contains("elected leader") }, "\(controller.log())")
        try controller.apply(Self.placement)
        let ready = try controller.run("steady", ["wait", "--for=condition=Ready", "route/first", "--timeout", "30s"])
        #expect(ready.status == 0, "\(ready)\n\(controller.log())")

        // A CA that did not sign etcd's certificate, or no client certificate: the controller stops with an error
        // that names the TLS flags, instead of waiting for an etcd that will never answer.
        let stranger = try TestCertificates(commonName: "another-ca")
        defer { stranger.remove() }
        for (what, flags) in [
            ("a wrong CA", ["--etcd-cacert", stranger.caCertificate] + clientFiles),
            ("no client certificate", ["--etcd-cacert", certificates.caCertificate]),
        ] {
            let refused = try ControllerProcess()
            defer { refused.remove() }
            let result = try refused.run(
                "steady",
                ["controller", "--data-dir", refused.dataDirectory.path, "--listen", "127.0.0.1:0"] + store + flags)
            #expect(result.status != 0, "\(what): \(result)")
            #expect(result.error.contains("TLS"), "\(what): \(result)")
            #expect(result.error.contains("--etcd-cacert"), "\(what): \(result)")
        }
    }

    @Test func everyReplicaAddsItsDeliveriesToRouteAndActionStatus() throws {
        guard let curl = Binaries.onPath("curl") else { return }
        guard let etcd = try EtcdServer.start() else { return }
        defer { etcd.remove() }
        let (replicas, logs) = try Self.replicas(2, on: etcd)
        defer { replicas.forEach { $0.remove() } }
        let output = replicas[0].dataDirectory.file("events.ndjson").path
        try replicas[0].apply(
            """
            apiVersion: steady.dev/v1
            kind: Action
            metadata: {name: record}
            spec: {type: file, file: {path: \(output)}}
            ---
            apiVersion: steady.dev/v1
            kind: Route
            metadata: {name: counted}
            spec: {input: 'has(input.n)', actions: [record]}
            """)
        let ready = try replicas[0].run("steady", ["wait", "--for=condition=Ready", "route/counted", "--timeout", "30s"])
        #expect(ready.status == 0, "\(ready)\n\(logs())")

        // Three events through one replica, two through the other: each delivers its own.
        for (replica, count) in zip(replicas, [3, 2]) {
            let token = try String(contentsOf: replica.dataDirectory.file("admin.token"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            for n in 1...count {
                let posted = try CommandResult.run(
                    curl,
                    [
                        "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                        replica.dataDirectory.file("ca.crt").path, "-H", "Authorization: Bearer \(token)", "-H",
                        "Content-Type: application/json", "--data", #"{"n":\#(n)}"#, "\(replica.server)/events",
                    ])
                #expect(posted.output == "202", "\(posted)")
            }
        }
        func status(_ object: String) -> [String: Any] {
            let shown = try? replicas[1].run("steady", ["get", object, "-o", "json"])
            let value = try? JSONSerialization.jsonObject(with: Data((shown?.output ?? "").utf8)) as? [String: Any]
            return value?["status"] as? [String: Any] ?? [:]
        }
        // The counts add up over both replicas; each keeps its own (empty) pending share.
        #expect(
            eventually(timeout: .seconds(30)) {
                let route = status("route/counted")
                return route["matchedEvents"] as? Int == 5 && route["delivered"] as? Int == 5
                    && route["pending"] as? Int == 0 && (route["replicas"] as? [String: Any])?.count == 2
            }, "\(status("route/counted"))\n\(logs())")
        #expect(
            eventually(timeout: .seconds(30)) { status("action/record")["delivered"] as? Int == 5 },
            "\(status("action/record"))")
    }

    @Test func aRunsOutputIsReadOnAnyReplicaFromTheOneItsAgentStreamedTo() throws {
        guard let curl = Binaries.onPath("curl") else { return }
        guard let etcd = try EtcdServer.start() else { return }
        defer { etcd.remove() }
        // The agent knows only the first replica: its output is kept there.
        let (holder, other, agent, logs) = try Self.twoReplicasAndAnAgentOfTheFirst(
            on: etcd, runCommand: #"/bin/sh -c "echo first line of $STEADY_RUN_NAME; sleep 2; echo second line >&2""#)
        defer { [holder, other].forEach { $0.remove() } }
        defer { agent.remove() }
        try other.apply(
            """
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: inventory}
            spec: {target: {runners: [web-1]}, keepOutput: true}
            """)

        func status() -> [String: Any] { Self.runStatus("inventory", on: other) }
        func result() -> [String: Any]? { (status()["results"] as? [[String: Any]])?.first }
        #expect(eventually(timeout: .seconds(30)) { result() != nil }, "\(status())\n\(logs())")

        // Followed through the other replica while it runs: it waits to learn where the output goes, then reads it
        // from there to the end.
        let followed = try other.run("steady", ["logs", "remoterun/inventory", "--runner", "web-1", "-f"])
        #expect(followed.status == 0, "\(followed)\n\(logs())")
        #expect(followed.output == "first line of inventory\n(stderr) | second line\n", "\(followed)\n\(logs())")
        #expect(eventually { status()["phase"] as? String == "Succeeded" }, "\(status())\n\(logs())")
        #expect(result()?["outputReplica"] as? String == holder.server, "\(status())")

        // Read again, one runner and every runner, through the replica that does not hold it.
        let one = try other.run("steady", ["logs", "remoterun/inventory", "--runner", "web-1"])
        #expect(one.output == "first line of inventory\n(stderr) | second line\n", "\(one)")
        let all = try other.run("steady", ["logs", "remoterun/inventory"])
        #expect(all.output == "web-1 | first line of inventory\nweb-1 (stderr) | second line\n", "\(all)")

        // A request marked as passed on by a replica is answered from what the replica asked holds (nothing here),
        // never passed on again: two replicas that disagree cannot bounce it between them.
        let token = try String(contentsOf: other.dataDirectory.file("admin.token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        func read(_ replica: ControllerProcess, proxied: Bool) throws -> CommandResult {
            try CommandResult.run(
                curl,
                [
                    "-s", "-w", "\n%{http_code}", "--cacert", replica.dataDirectory.file("ca.crt").path,
                    "-H", "Authorization: Bearer \(token)",
                ] + (proxied ? ["-H", "Steady-Proxied-By: \(holder.server)"] : [])
                    + ["\(replica.server)/apis/steady.dev/v1/remoteruns/inventory/log?runner=web-1"])
        }
        #expect(try read(other, proxied: true).output == "\n200")
        #expect(try read(other, proxied: false).output == "first line of inventory\n(stderr) | second line\n\n200")
        #expect(try read(holder, proxied: true).output == "first line of inventory\n(stderr) | second line\n\n200")

        // The holder gone: a clear error naming it and the runner, at once, not a hang or an empty log.
        holder.stop(signal: SIGKILL)
        let lost = try other.run("steady", ["logs", "remoterun/inventory", "--runner", "web-1"])
        #expect(lost.status != 0, "\(lost)")
        #expect(lost.error.contains(holder.server) && lost.error.contains("runner \"web-1\""), "\(lost)")
        #expect(!lost.error.contains(token) && !other.log().contains(token), "\(lost)")
    }

    @Test func aRunnersScheduledRunLogIsReadOnAnyReplica() throws {
        guard let etcd = try EtcdServer.start() else { return }
        defer { etcd.remove() }
        let (replicas, logs) = try Self.replicas(2, on: etcd)
        defer { replicas.forEach { $0.remove() } }
        let (holder, other) = (replicas[0], replicas[1])
        try other.apply(
            """
            apiVersion: steady.dev/v1
            kind: Runner
            metadata: {name: web-1}
            spec: {schedule: {interval: 2s, splay: 1s}}
            """)
        // The agent reports to the first replica only, which keeps the output of its scheduled runs.
        let agent = try AgentProcess(name: "web-1")
        defer { agent.remove() }
        try agent.start(controller: holder, joinToken: try holder.joinToken(), runCommand: "/bin/echo scheduled")
        func lastRun() -> [String: Any] {
            let runner = try? other.run("steady", ["get", "runner", "web-1", "-o", "json"])
            let object = try? JSONSerialization.jsonObject(with: Data((runner?.output ?? "").utf8)) as? [String: Any]
            return (object?["status"] as? [String: Any])?["lastRun"] as? [String: Any] ?? [:]
        }
        #expect(
            eventually(timeout: .seconds(60)) { lastRun()["outputReplica"] as? String == holder.server },
            "\(lastRun())\n\(agent.log())\n\(logs())")
        // Read through the other replica (a run just started may have printed nothing yet: the next one has).
        #expect(
            eventually(timeout: .seconds(30)) {
                (try? other.run("steady", ["logs", "runner/web-1"]).output) == "scheduled\n"
            }, "\(lastRun())\n\(logs())")
    }

    @Test func aRunOverAgentsOfBothReplicasReadsAsOneLogOnEither() throws {
        guard let etcd = try EtcdServer.start() else { return }
        defer { etcd.remove() }
        let (replicas, logs) = try Self.replicas(2, on: etcd)
        defer { replicas.forEach { $0.remove() } }
        // web-1 reports to the first replica, web-2 to the second. Each runs longer than the run's delivery timeout:
        // the replica without its agent must not take it for unreachable.
        let agents = try zip(["web-1", "web-2"], replicas).map { name, replica in
            let agent = try AgentProcess(name: name)
            try agent.start(
                controller: replica, joinToken: try replica.joinToken(),
                runCommand: #"/bin/sh -c "echo $STEADY_RUNNER starts; sleep 6; echo $STEADY_RUNNER ends""#)
            return agent
        }
        defer { agents.forEach { $0.remove() } }
        func status(_ replica: ControllerProcess) -> [String: Any] { Self.runStatus("both", on: replica) }
        #expect(
            eventually(timeout: .seconds(30)) {
                let names = (try? replicas[0].run("steady", ["get", "runners", "-o", "name"]).output) ?? ""
                return names.contains("web-1") && names.contains("web-2")
            }, "\(logs())")
        try replicas[1].apply(
            """
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: both}
            spec: {target: {runners: [web-1, web-2]}, keepOutput: true, deliveryTimeout: 4s}
            """)
        #expect(
            eventually(timeout: .seconds(30)) { (status(replicas[1])["results"] as? [Any])?.count == 2 },
            "\(status(replicas[1]))\n\(logs())")

        // Followed on the second replica: its own runner's lines and, through the first, the other's, whole lines.
        let followed = try replicas[1].run("steady", ["logs", "remoterun/both", "-f"])
        #expect(followed.status == 0, "\(followed)\n\(logs())")
        let expected = Set(["web-1", "web-2"].flatMap { ["\($0) | \($0) starts", "\($0) | \($0) ends"] })
        #expect(Set(followed.output.split(separator: "\n").map(String.init)) == expected, "\(followed)\n\(logs())")

        // Both replicas recorded their own runner; the run completes once, Succeeded, on either.
        #expect(
            eventually { status(replicas[0])["phase"] as? String == "Succeeded" }, "\(status(replicas[0]))\n\(logs())")
        let results = (status(replicas[0])["results"] as? [[String: Any]]) ?? []
        var holders: [String: String] = [:]
        for result in results { holders[result["runner"] as? String ?? ""] = result["outputReplica"] as? String }
        #expect(holders == ["web-1": replicas[0].server, "web-2": replicas[1].server], "\(results)")
        #expect((status(replicas[0])["counts"] as? [String: Any])?["succeeded"] as? Int == 2)

        // `steady run` through either replica streams every runner's output, followed from the run's creation.
        let again = try replicas[0].run(
            "steady", ["run", "--name", "again", "--runners", "web-1,web-2", "--delivery-timeout", "4s"])
        #expect(again.status == 0, "\(again)\n\(logs())")
        for runner in ["web-1", "web-2"] {
            #expect(again.output.contains("\(runner) | \(runner) ends"), "\(again)")
        }

        // Read on either: that replica's runners first, then the other's.
        for (replica, order) in zip(replicas, [["web-1", "web-2"], ["web-2", "web-1"]]) {
            let all = try replica.run("steady", ["logs", "remoterun/both"])
            let text = order.map { "\($0) | \($0) starts\n\($0) | \($0) ends\n" }.joined()
            #expect(all.output == text, "\(replica.server): \(all)")
        }
    }

    @Test func aRunnerWhoseReplicaAndAgentDieMidRunEndsUnreachableOnTheSurvivor() throws {
        guard let etcd = try EtcdServer.start() else { return }
        defer { etcd.remove() }
        // The agent knows only the first replica; its run lasts longer than the test.
        let (holder, survivor, agent, logs) = try Self.twoReplicasAndAnAgentOfTheFirst(
            on: etcd, runCommand: #"/bin/sh -c "echo started; sleep 100""#)
        defer { [holder, survivor].forEach { $0.remove() } }
        defer { agent.remove() }
        try survivor.apply(
            """
            apiVersion: steady.dev/v1
            kind: RemoteRun
            metadata: {name: stranded}
            spec: {target: {runners: [web-1]}, deliveryTimeout: 4s}
            """)
        func status() -> [String: Any] { Self.runStatus("stranded", on: survivor) }
        func result() -> [String: Any] { (status()["results"] as? [[String: Any]])?.first ?? [:] }
        #expect(
            eventually(timeout: .seconds(30)) {
                result()["phase"] as? String == "Running" && result()["outputReplica"] as? String == holder.server
            }, "\(status())\n\(logs())")

        // The replica holding its agent and the agent die mid-run: nobody can finish the runner's part. Once no
        // heartbeat of it shows for the silence timeout (90 s after the last one), the survivor gives it up.
        agent.stop(signal: SIGKILL)
        holder.stop(signal: SIGKILL)
        #expect(
            eventually(timeout: .seconds(180)) { status()["phase"] as? String == "Failed" },
            "\(status())\n\(logs())")
        #expect(result()["phase"] as? String == "Unreachable", "\(status())")
        #expect(result()["reason"] as? String == "ReplicaLost", "\(status())")
        let conditions = (status()["conditions"] as? [[String: Any]]) ?? []
        #expect(
            conditions.contains { $0["type"] as? String == "Failed" && $0["reason"] as? String == "RunnersFailed" },
            "\(status())")
        // The Runner stops saying Connected: its heartbeat stood still just as long, and no live replica holds it.
        #expect(
            eventually(timeout: .seconds(30)) {
                FaultEnvironment.runnerCondition(survivor, "web-1", "Connected") == "False"
                    && FaultEnvironment.runnerCondition(survivor, "web-1", "Ready") == "False"
            }, "\(logs())")
    }
}
