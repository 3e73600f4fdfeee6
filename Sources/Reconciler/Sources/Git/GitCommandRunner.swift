import Foundation
import Logging
import Subprocess
import Synchronization

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// What one git command printed and how it ended.
struct GitOutput: Sendable {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

/// Why a git command did not give an answer.
struct GitFailure: Error, Sendable, Equatable, CustomStringConvertible {
    var reason: GitSourceReason
    /// What happened, with git's standard error and every secret scrubbed.
    var message: String

    var description: String { message }
}

/// Runs the `git` executable in a hardened environment: no prompt, no system or global configuration, a private
/// HOME, hooks disabled, in a process group of its own that a timeout kills whole.
struct GitCommandRunner: Sendable {
    /// The git executable, or nil when none is installed.
    let executable: String?
    /// A private directory: HOME for git (and where credential files are made).
    let home: URL
    /// The process counts, by subcommand (`ls-remote`, `fetch`...), for the benchmark and the tests.
    let counter: GitCommandCounter
    let logger: Logger

    /// Finds git on `PATH`.
    static func findGit(path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        for directory in (path ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/git"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `git ARGUMENTS`; a non-zero exit is a result, a timeout or a missing git is a ``GitFailure``.
    /// - Parameters:
    ///   - credentials: the environment and scrubbing for the repository's Secret.
    ///   - workingDirectory: where to run (a cache directory).
    func run(
        _ arguments: [String], credentials: GitCredentials, timeout: Duration, workingDirectory: URL? = nil
    ) async throws(GitFailure) -> GitOutput {
        guard let executable else {
            throw GitFailure(
                reason: .gitUnavailable,
                message: "git is not installed on the controller (not found on PATH); install git to fetch "
                    + "GitRepository sources")
        }
        let command = arguments.first { !$0.hasPrefix("-") } ?? ""
        counter.count(command)
        logger.debug("git", metadata: ["steady.git.command": "\(command)"])
        var environment: [Environment.Key: String] = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": home.path,
            "XDG_CONFIG_HOME": home.path,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_ASKPASS": "/bin/false",
            "SSH_ASKPASS": "/bin/false",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null",
            "LC_ALL": "C",
        ]
        for (key, value) in credentials.environment { environment[Environment.Key(stringLiteral: key)] = value }
        var options = PlatformOptions()
        // A session and process group of its own: a timeout (or shutdown) stops git and ssh, remote helpers and
        // all, with one signal.
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(1))]
        // Hooks never run, whatever a repository or a cache carries.
        let hardened = ["-c", "core.hooksPath=/dev/null", "-c", "credential.helper="] + arguments
        let timedOut = TimeoutFlag()
        let output: Data
        let error: Data
        let termination: TerminationStatus
        do {
            let outcome = try await Subprocess.run(
                .path(FilePath(executable)), arguments: Arguments(hardened), environment: .custom(environment),
                workingDirectory: workingDirectory.map { FilePath($0.path) }, platformOptions: options,
                input: .none, output: .sequence, error: .sequence
            ) { execution in
                try await withThrowingTaskGroup(of: (Int, Data)?.self) { group in
                    group.addTask {
                        var data = Data()
                        for try await buffer in execution.standardOutput {
                            buffer.withUnsafeBytes { data.append(contentsOf: $0) }
                        }
                        return (1, data)
                    }
                    group.addTask {
                        var data = Data()
                        for try await buffer in execution.standardError {
                            buffer.withUnsafeBytes { data.append(contentsOf: $0) }
                        }
                        return (2, data)
                    }
                    group.addTask {
                        try await Task.sleep(for: timeout)
                        timedOut.value.withLock { $0 = true }
                        try? execution.send(signal: .kill, toProcessGroup: true)
                        return nil
                    }
                    var output = Data()
                    var error = Data()
                    var open = 2
                    while open > 0, let next = try await group.next() {
                        guard let (stream, data) = next else { continue }
                        if stream == 1 { output = data } else { error = data }
                        open -= 1
                    }
                    group.cancelAll()
                    return (output, error)
                }
            }
            (output, error) = outcome.closureResult
            termination = outcome.terminationStatus
        } catch let error as SubprocessError where error.code == .executableNotFound {
            throw GitFailure(reason: .gitUnavailable, message: "git cannot be run at \(executable): \(error)")
        } catch {
            throw GitFailure(reason: .fetchFailed, message: "git \(command) failed to run: \(error)")
        }
        if timedOut.value.withLock({ $0 }) {
            throw GitFailure(
                reason: .timeout,
                message: "git \(command) did not finish within \(timeout) and was stopped; raise "
                    + "spec.timeout or check that the server answers")
        }
        let status: Int32
        switch termination {
        case .exited(let code): status = code
        case .signaled(let signal): status = 128 + signal
        }
        return GitOutput(
            status: status, standardOutput: String(decoding: output, as: UTF8.self),
            standardError: credentials.scrub(String(decoding: error, as: UTF8.self)))
    }
}

/// Counts git processes by subcommand.
final class GitCommandCounter: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func count(_ command: String) { counts.withLock { $0[command, default: 0] += 1 } }

    /// The counts so far.
    var snapshot: [String: Int] { counts.withLock { $0 } }
}

/// Set by the task that stops git on timeout, read once git has ended.
final class TimeoutFlag: Sendable {
    let value = Mutex(false)
}
