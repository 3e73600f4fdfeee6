import Foundation
import SteadyTesting
import Testing

/// Two controllers on one real etcd (started on loopback ports), with agents that know both: a shared identity,
/// one leader, and SIGKILL of that leader. Skipped, with a printed reason, when etcd is not installed.
@Suite(.serialized, .timeLimit(.minutes(5))) struct EtcdFailoverEndToEndTests {
    static let configuration = """
        apiVersion: steady.dev/v1
        kind: Action
        metadata: {name: notify}
        spec: {type: http, http: {url: https://hooks.example/notify}}
        ---
        apiVersion: steady.dev/v1
        kind: Route
        metadata: {name: first}
        spec: {input: 'input.x == 1', actions: [notify]}
        ---
        apiVersion: steady.dev/v1
        kind: Assignment
        metadata: {name: placement}
        spec:
          runnerSelector: {matchLabels: {role: web}}
          routes: [first]
          actions: [notify]
        """

    @Test func leaderSIGKILLHandsOverWithoutLosingWritesAndAgentsFailOver() throws {
        guard let etcd = try EtcdServer.start() else { return }
        defer { etcd.remove() }
        let replicas = try (0..<2).map { _ in try ControllerProcess() }
        defer { replicas.forEach { $0.remove() } }
        let store = ["--store", "etcd://\(etcd.endpoint)", "--leader-lease-seconds", "2"]
        for replica in replicas {
            try replica.start(extraArguments: store, port: try EtcdServer.freePort())
        }
        let logs = { replicas.map { "\($0.server):\n\($0.log())" }.joined(separator: "\n") + "\netcd:\n\(etcd.log())" }

        // One identity: the same CA and admin token, so one kubeconfig works against either replica.
        for file in ["ca.crt", "ca.key", "admin.token"] {
            #expect(try contents(replicas[0], file) == contents(replicas[1], file), "\(file) differs")
        }
        try replicas[0].apply(Self.configuration)
        let crossed = try kubeconfig(of: replicas[0], pointingAt: replicas[1])
        let viaOther = try replicas[0].run("steady", ["get", "route", "first", "-o", "name"], kubeconfig: crossed)
        #expect(viaOther.status == 0, "\(viaOther)")

        // Exactly one leader.
        #expect(eventually(timeout: .seconds(20)) { replicas.filter { $0.log().contains("elected leader") }.count == 1 }, "\(logs())")
        guard let leaderIndex = replicas.firstIndex(where: { $0.log().contains("elected leader") }) else { return }
        let (leader, survivor) = (replicas[leaderIndex], replicas[1 - leaderIndex])
        let ready = try survivor.run("steady", ["wait", "--for=condition=Ready", "route/first", "--timeout", "30s"])
        #expect(ready.status == 0, "\(ready)\n\(logs())")

        // Agents know both replicas, the leader first.
        let token = try leader.joinToken()
        let agents = try ["web-1", "web-2"].map { name in
            let agent = try AgentProcess(name: name)
            try agent.start(
                controller: leader, joinToken: token, labels: ["role": "web"],
                controllerURLs: "\(leader.server),\(survivor.server)")
            return agent
        }
        defer { agents.forEach { $0.remove() } }
        let slice: Set<String> = ["Route/first", "Action/notify"]
        #expect(eventually(timeout: .seconds(30)) { agents.allSatisfy { $0.sliceKeys() == slice } }, "\(logs())")

        // Writes the leader acknowledged, then SIGKILL.
        let names = (1...20).map { "acknowledged-\($0)" }
        for name in names {
            try leader.apply("apiVersion: steady.dev/v1\nkind: Secret\nmetadata: {name: \(name)}\nstringData: {k: v}\n")
        }
        let killed = ContinuousClock.now
        leader.stop(signal: SIGKILL)

        // The survivor takes the lease over and its reconcilers run: a Route made now becomes Ready.
        #expect(eventually(timeout: .seconds(30)) { survivor.log().contains("elected leader") }, "\(logs())")
        print("etcd failover: the survivor was elected \(ContinuousClock.now - killed) after SIGKILL of the leader")
        try survivor.apply(
            "apiVersion: steady.dev/v1\nkind: Route\nmetadata: {name: second}\nspec: {input: 'input.x == 2', actions: [notify]}\n")
        let second = try survivor.run("steady", ["wait", "--for=condition=Ready", "route/second", "--timeout", "30s"])
        #expect(second.status == 0, "\(second)\n\(logs())")

        // Every acknowledged write is readable through the survivor.
        let listed = try survivor.run("steady", ["get", "secrets", "-o", "name"])
        #expect(listed.status == 0, "\(listed)")
        for name in names { #expect(listed.output.contains(name), "\(name) was lost") }

        // The agents reconnect to the survivor and converge on a change made after the kill.
        try survivor.apply(
            "apiVersion: steady.dev/v1\nkind: Assignment\nmetadata: {name: placement}\nspec:\n  runnerSelector: {matchLabels: {role: web}}\n  routes: [first, second]\n  actions: [notify]\n")
        let after: Set<String> = ["Route/first", "Route/second", "Action/notify"]
        #expect(
            eventually(timeout: .seconds(40)) { agents.allSatisfy { $0.sliceKeys() == after } },
            "\(agents.map { $0.log() }.joined(separator: "\n"))\n\(logs())")
        print("etcd failover: every agent converged \(ContinuousClock.now - killed) after SIGKILL of the leader")
    }

    @Test func etcdRestartUnderLoadLosesNoWrite() throws {
        guard let etcd = try EtcdServer.start() else { return }
        defer { etcd.remove() }
        let replica = try ControllerProcess()
        defer { replica.remove() }
        try replica.start(extraArguments: ["--store", "etcd://\(etcd.endpoint)", "--leader-lease-seconds", "2"])
        var acknowledged: [String] = []
        for index in 1...30 {
            if index == 10 { etcd.stop(signal: SIGKILL) }
            if index == 12 { try etcd.start() }
            let name = "during-restart-\(index)"
            let result = try replica.run(
                "apply", ["-f", "-"], input: "apiVersion: steady.dev/v1\nkind: Secret\nmetadata: {name: \(name)}\nstringData: {k: v}\n")
            if result.status == 0 { acknowledged.append(name) }
        }
        // The controller reconnects on its own: writes succeed again and nothing acknowledged is missing.
        #expect(acknowledged.contains("during-restart-30"), "\(replica.log())")
        let listed = try replica.run("steady", ["get", "secrets", "-o", "name"])
        #expect(listed.status == 0, "\(listed)")
        for name in acknowledged { #expect(listed.output.contains(name), "\(name) was lost\n\(replica.log())") }
        // Its informer resumed: a Route applied now is reconciled.
        try replica.apply(Self.configuration)
        let ready = try replica.run("steady", ["wait", "--for=condition=Ready", "route/first", "--timeout", "30s"])
        #expect(ready.status == 0, "\(ready)\n\(replica.log())")
    }

    @Test func aLeaderCutOffFromEtcdStepsDownAndAnotherLeads() throws {
        guard let etcd = try EtcdServer.start() else { return }
        defer { etcd.remove() }
        let proxy = try TCPProxy(targetPort: etcd.clientPort)
        defer { proxy.stop() }
        let (cutOff, other) = (try ControllerProcess(), try ControllerProcess())
        defer { [cutOff, other].forEach { $0.remove() } }
        let flags = ["--leader-lease-seconds", "2"]
        // The first controller reaches etcd only through the proxy, and leads.
        try cutOff.start(extraArguments: ["--store", "etcd://127.0.0.1:\(proxy.port)"] + flags)
        #expect(eventually(timeout: .seconds(20)) { cutOff.log().contains("elected leader") }, "\(cutOff.log())")
        try other.start(extraArguments: ["--store", "etcd://\(etcd.endpoint)"] + flags)
        try other.apply(Self.configuration)
        let logs = { "cut off:\n\(cutOff.log())\nother:\n\(other.log())" }

        proxy.cut()
        // The leader steps down (its reconcilers stop) and the other controller is elected.
        #expect(eventually(timeout: .seconds(30)) { cutOff.log().contains("no longer leading") }, "\(logs())")
        #expect(eventually(timeout: .seconds(30)) { other.log().contains("elected leader") }, "\(logs())")
        #expect(cutOff.isRunning)
        // The new leader's reconcilers run.
        let ready = try other.run("steady", ["wait", "--for=condition=Ready", "route/first", "--timeout", "30s"])
        #expect(ready.status == 0, "\(ready)\n\(logs())")

        // Healed, the old leader serves again as a follower: writes through it land, and it does not lead.
        proxy.heal()
        let written = eventually(timeout: .seconds(40)) {
            (try? other.run("steady", ["get", "route", "first", "-o", "name"]))?.status == 0
                && (try? cutOff.run(
                    "apply", ["-f", "-"],
                    input: "apiVersion: steady.dev/v1\nkind: Secret\nmetadata: {name: after-heal}\nstringData: {k: v}\n"))?
                    .status == 0
        }
        #expect(written, "\(logs())")
        let seen = try other.run("steady", ["get", "secret", "after-heal", "-o", "name"])
        #expect(seen.status == 0, "\(seen)")
        #expect(cutOff.log().components(separatedBy: "elected leader").count == 2, "\(logs())")
    }

    private func contents(_ replica: ControllerProcess, _ file: String) throws -> String {
        try String(contentsOf: replica.dataDirectory.file(file), encoding: .utf8)
    }

    /// A copy of `replica`'s kubeconfig whose server is `other`'s.
    private func kubeconfig(of replica: ControllerProcess, pointingAt other: ControllerProcess) throws -> String {
        let text = try String(contentsOfFile: replica.kubeconfig, encoding: .utf8)
            .replacingOccurrences(of: replica.server, with: other.server)
        let url = replica.dataDirectory.file("crossed.kubeconfig")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }
}
