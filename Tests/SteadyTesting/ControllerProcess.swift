import Foundation

/// A real `steady controller` process on loopback, for end-to-end tests.
public final class ControllerProcess: @unchecked Sendable {
    // Only the test that owns it touches it, one call at a time.
    public let dataDirectory: TemporaryDirectory
    public let manifests: URL?
    private var process: Process?
    private var logFile: URL { dataDirectory.file("controller.log") }
    public private(set) var server = ""

    public var kubeconfig: String { dataDirectory.file("admin.kubeconfig").path }

    public init(manifests: URL? = nil) throws {
        dataDirectory = try TemporaryDirectory(prefix: "steady-e2e")
        self.manifests = manifests
    }

    /// Starts the controller on a free port and waits until it has written its kubeconfig.
    public func start(extraArguments: [String] = [], port: Int = 0) throws {
        try? FileManager.default.removeItem(atPath: kubeconfig)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.path("steady"))
        var arguments = ["controller", "--data-dir", dataDirectory.path, "--listen", "127.0.0.1:\(port)"]
        if let manifests { arguments += ["--manifests", manifests.path] }
        process.arguments = arguments + extraArguments
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let log = try FileHandle(forWritingTo: logFile)
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: kubeconfig, encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.contains("server:") })
            {
                server = line.split(separator: " ").last.map(String.init) ?? ""
                return
            }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw ControllerProcessError(message: "controller did not start:\n\(self.log())")
    }

    /// The port the controller listens on.
    public var port: Int { Int(server.split(separator: ":").last ?? "") ?? 0 }

    /// Stops the controller with `signal` and starts it again on the same port.
    public func restart(signal: Int32 = SIGTERM) throws {
        let port = self.port
        stop(signal: signal)
        try start(port: port)
    }

    /// Sends a signal (SIGKILL simulates a crash) and waits for the process to end.
    public func stop(signal: Int32 = SIGTERM) {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        self.process = nil
    }

    public var terminationStatus: Int32? { process?.isRunning == false ? process?.terminationStatus : nil }

    /// Whether the process is still running.
    public var isRunning: Bool { process?.isRunning ?? false }

    /// The process's resident memory in KiB (VmRSS), nil when it does not run.
    public var residentKilobytes: Int? {
        guard let process, process.isRunning,
            let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    /// Sends a signal without waiting for the process to end.
    public func signal(_ signal: Int32) {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, signal)
    }

    public func log() -> String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    public func remove() {
        stop(signal: SIGKILL)
        dataDirectory.remove()
    }

    /// Runs kubectl against this controller, or returns nil when kubectl is not installed.
    public func kubectl(_ arguments: [String], input: String? = nil) throws -> CommandResult? {
        guard let kubectl = Binaries.onPath("kubectl") else { return nil }
        return try CommandResult.run(kubectl, ["--kubeconfig", kubeconfig] + arguments, input: input)
    }

    /// The value of an unlabelled metric on `/metrics`, read with `kubectl get --raw`; nil when kubectl is not
    /// installed or the metric is absent.
    public func metric(_ name: String) -> Double? {
        guard let result = try? kubectl(["get", "--raw", "/metrics"]), result.status == 0 else { return nil }
        let line = result.output.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// A new join token for agents (`steady token create --ttl 1h`).
    public func joinToken() throws -> String {
        let result = try run("steady", ["token", "create", "--ttl", "1h"])
        guard result.status == 0 else { throw ControllerProcessError(message: "token create: \(result)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Applies manifests given as text with `apply -f -`.
    public func apply(_ yaml: String) throws {
        let result = try run("apply", ["-f", "-"], input: yaml)
        guard result.status == 0 else { throw ControllerProcessError(message: "apply: \(result)") }
    }

    /// Runs a steady executable (`steady` or `apply`) against this controller, or with another kubeconfig.
    public func run(
        _ binary: String, _ arguments: [String], input: String? = nil, kubeconfig: String? = nil
    ) throws -> CommandResult {
        try CommandResult.run(
            Binaries.path(binary), arguments, input: input,
            environment: ["STEADY_KUBECONFIG": kubeconfig ?? self.kubeconfig])
    }
}

public struct ControllerProcessError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(20), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.1)
    }
    return try condition()
}
