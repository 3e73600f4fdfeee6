import Client
import Foundation
import Resources

/// `steady-bench gitops [--objects 10000] [--idle 30]`: a GitRepository over `git daemon` on loopback holding N
/// manifests (100 per file). Prints the time from a push to everything applied, from a push of a one-object
/// change to it applied, and what an idle poll costs: git processes (counted by a `git` wrapper placed first on
/// the controller's PATH), API writes (the store revision before and after) and the controller's CPU, its
/// children (git) included.
enum GitOpsBenchmark {
    static func run(objects count: Int, idleSeconds: Int, binaries: URL) async {
        let fileManager = FileManager.default
        let directory = fileManager.temporaryDirectory.appendingPathComponent("steady-gitops-\(UUID().uuidString)")
        defer { try? fileManager.removeItem(at: directory) }
        let work = directory.appendingPathComponent("work")
        let repos = directory.appendingPathComponent("repos")
        let bin = directory.appendingPathComponent("bin")
        let gitLog = directory.appendingPathComponent("git-commands.log")
        for folder in [work, repos, bin] { try? fileManager.createDirectory(at: folder, withIntermediateDirectories: true) }
        let environment = ["HOME": directory.path, "GIT_CONFIG_NOSYSTEM": "1"]
        func git(_ arguments: [String], in folder: URL = work) -> String {
            ConvergenceBenchmark.output("/usr/bin/git", ["-C", folder.path] + arguments, environment: environment)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = git(["init", "-q", "--bare", "--initial-branch=main", repos.appendingPathComponent("fleet.git").path])
        _ = git(["init", "-q", "--initial-branch=main"])
        _ = git(["config", "user.email", "bench@steady.dev"])
        _ = git(["config", "user.name", "bench"])
        _ = git(["remote", "add", "origin", repos.appendingPathComponent("fleet.git").path])
        func commit(_ message: String) -> String {
            _ = git(["add", "-A"])
            _ = git(["commit", "-q", "--allow-empty", "-m", message])
            _ = git(["push", "-q", "origin", "main"])
            return git(["rev-parse", "HEAD"])
        }
        let manifests = work.appendingPathComponent("manifests")
        try? fileManager.createDirectory(at: manifests, withIntermediateDirectories: true)
        try? manifest(prefix: "seed", count: 4).write(
            to: manifests.appendingPathComponent("seed.yaml"), atomically: true, encoding: .utf8)
        _ = commit("seed")

        // git daemon, and a git wrapper that logs every git the controller starts.
        let port = 20_000 + Int.random(in: 0..<20_000)
        // git-daemon itself (not `git daemon`, whose front process would be the one stopped).
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: git(["--exec-path"]) + "/git-daemon")
        daemon.arguments = [
            "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=\(port)",
            "--base-path=\(repos.path)", repos.path,
        ]
        do { try daemon.run() } catch { fail("cannot start git daemon: \(error)") }
        defer { kill(daemon.processIdentifier, SIGKILL) }
        let wrapper = bin.appendingPathComponent("git")
        try? "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in -*|*=*) ;; *) echo \"$a\" >> \(gitLog.path); break ;; esac; done\nexec /usr/bin/git \"$@\"\n"
            .write(to: wrapper, atomically: true, encoding: .utf8)
        try? fileManager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: wrapper.path)
        let path = bin.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let (controller, kubeconfig) = startController(
            in: directory.appendingPathComponent("controller"), logLevel: "warning", environment: ["PATH": path])
        defer { stopController(controller) }
        guard let cluster = try? Kubeconfig.load(from: URL(fileURLWithPath: kubeconfig)).currentCluster,
            let client = try? APIClient(configuration: .init(server: cluster.server, caPEM: cluster.caPEM, token: cluster.token))
        else { fail("cannot read \(kubeconfig)") }
        let url = "git://127.0.0.1:\(port)/fleet.git"
        let source: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "GitRepository", "metadata": ["name": "fleet"],
            "spec": ["url": .string(url), "ref": ["branch": "main"], "path": "manifests", "interval": "1s"],
        ]
        do {
            _ = try await client.apply(Kinds.gitRepository, source, fieldManager: "bench")
        } catch { fail("cannot create the GitRepository: \(error)") }

        /// Waits until the source has applied `commit`; returns the seconds since `start`.
        func waitApplied(_ commit: String, since start: ContinuousClock.Instant) async -> Double {
            let deadline = start + .seconds(600)
            while ContinuousClock.now < deadline {
                if let object = try? await client.get(Kinds.gitRepository, name: "fleet") {
                    let applied = object["status"]?["lastAppliedRevision"]?.stringValue
                    if applied == "main@sha1:\(commit)" { break }
                    if let ready = object.condition("Ready"), ready["status"]?.stringValue == "False",
                        object["status"]?["lastAttemptedRevision"]?.stringValue == "main@sha1:\(commit)"
                    {
                        fail("not applied: \(ready["reason"]?.stringValue ?? ""): \(ready["message"]?.stringValue ?? "")")
                    }
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            let elapsed = ContinuousClock.now - start
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }
        let seed = git(["rev-parse", "HEAD"])
        _ = await waitApplied(seed, since: .now)

        // N manifests, 100 per file.
        let perFile = 100
        for file in 0..<(count + perFile - 1) / perFile {
            let text = manifest(prefix: "f\(file)", count: min(perFile, count - file * perFile))
            try? text.write(to: manifests.appendingPathComponent("f\(file).yaml"), atomically: true, encoding: .utf8)
        }
        let pushStart = ContinuousClock.now
        let big = commit("\(count) manifests")
        let pushed = await waitApplied(big, since: pushStart)
        say("gitops benchmark: \(count) manifests (\(perFile) per file) over git daemon on loopback, interval 1s")
        say(String(format: "  push -> all %d applied:          %6.2f s", count, pushed))

        // One object changed.
        let first = manifests.appendingPathComponent("f0.yaml")
        let text = (try? String(contentsOf: first, encoding: .utf8)) ?? ""
        try? text.replacingOccurrences(of: "{name: f0-a0}\nspec: {type: stdout}", with: "{name: f0-a0}\nspec: {type: file, file: {path: /tmp/bench}}")
            .write(to: first, atomically: true, encoding: .utf8)
        let changeStart = ContinuousClock.now
        let change = commit("one object")
        let changed = await waitApplied(change, since: changeStart)
        say(String(format: "  push -> one-object change applied: %6.2f s", changed))

        // Idle: nothing pushed.
        try? await Task.sleep(for: .seconds(3))
        func revision() async -> Int64 {
            Int64((try? await client.list(Kinds.gitRepository).resourceVersion) ?? "") ?? -1
        }
        let commandsBefore = ((try? String(contentsOf: gitLog, encoding: .utf8)) ?? "").split(separator: "\n")
        let revisionBefore = await revision()
        let cpuBefore = cpuWithChildren(controller.processIdentifier)
        try? await Task.sleep(for: .seconds(idleSeconds))
        let cpuAfter = cpuWithChildren(controller.processIdentifier)
        let revisionAfter = await revision()
        let commandsAfter = ((try? String(contentsOf: gitLog, encoding: .utf8)) ?? "").split(separator: "\n")
        let idle = commandsAfter.dropFirst(commandsBefore.count)
        var byCommand: [String: Int] = [:]
        for command in idle { byCommand[String(command), default: 0] += 1 }
        say("  idle for \(idleSeconds) s (about \(idleSeconds) polls at 1s):")
        say("    git processes: \(idle.count) (\(byCommand.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))")
        say("    API writes (store revision delta): \(revisionAfter - revisionBefore)")
        say(String(format: "    controller CPU, git children included: %.2f s (%.2f %% of a core)",
            cpuAfter - cpuBefore, (cpuAfter - cpuBefore) / Double(idleSeconds) * 100))
        say("  controller peak RSS: \(peakRSS(pid: controller.processIdentifier))")
        try? await client.shutdown()
    }

    /// User and system CPU seconds of a process and its reaped children (git), from /proc.
    static func cpuWithChildren(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: end)...].split(separator: " ").compactMap { Double($0) }
        // After the name: state(0) ... utime 11, stime 12, cutime 13, cstime 14 (state is not a number, so shift).
        guard fields.count > 13 else { return 0 }
        return (fields[10] + fields[11] + fields[12] + fields[13]) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
