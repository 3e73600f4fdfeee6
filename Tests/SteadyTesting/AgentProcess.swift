import Foundation
import Resources

/// A real `steady agent` (or `steady-agent`) process enrolled with a controller, for end-to-end tests.
public final class AgentProcess: @unchecked Sendable {
    /// The program that runs the agent.
    public enum Program: Sendable {
        /// `steady agent`.
        case steadySubcommand
        /// `steady-agent`, the executable that holds only the agent.
        case steadyAgent
    }

    // Only the test that owns it touches it, one call at a time.
    public let name: String
    public let program: Program
    public let stateDirectory: TemporaryDirectory
    private var process: Process?
    private var logFile: URL { stateDirectory.url.deletingLastPathComponent().appendingPathComponent("agent-\(name)-\(stateDirectory.url.lastPathComponent).log") }

    public init(name: String, program: Program = .steadySubcommand) throws {
        self.name = name
        self.program = program
        stateDirectory = try TemporaryDirectory(prefix: "steady-agent-\(name)")
    }

    /// Starts the agent; the token is needed only for the first start. `controllerURLs` overrides the controller's
    /// address, e.g. with several replicas' addresses, comma-separated. `launcher` runs the agent through another
    /// command that ends by exec'ing it in the same process, e.g. `ip netns exec NAME`.
    public func start(
        controller: ControllerProcess, joinToken: String?, labels: [String: String] = [:], allowExec: Bool = false,
        runCommand: String? = nil, controllerURLs: String? = nil, extraArguments: [String] = [],
        launcher: [String] = []
    ) throws {
        let process = Process()
        let binary = Binaries.path(program == .steadyAgent ? "steady-agent" : "steady")
        process.executableURL = URL(fileURLWithPath: launcher.first ?? binary)
        var arguments = launcher.isEmpty ? [] : Array(launcher.dropFirst()) + [binary]
        arguments += program == .steadyAgent ? [] : ["agent"]
        arguments += [
            "--controller", controllerURLs ?? controller.server, "--name", name, "--state-dir", stateDirectory.path,
            "--heartbeat-interval", "1s",
        ]
        if let joinToken { arguments += ["--join-token", joinToken] }
        if !labels.isEmpty { arguments += ["--labels", labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")] }
        if allowExec { arguments.append("--allow-exec") }
        if let runCommand { arguments += ["--run-command", runCommand] }
        process.arguments = arguments + extraArguments
        if !FileManager.default.fileExists(atPath: logFile.path) {
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        }
        let log = try FileHandle(forWritingTo: logFile)
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
    }

    public func stop(signal: Int32 = SIGTERM) {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        self.process = nil
    }

    public var isRunning: Bool { process?.isRunning ?? false }
    public var exitStatus: Int32? { process?.isRunning == false ? process?.terminationStatus : nil }

    public func log() -> String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// The keys (`Kind/name`) of the last good slice the agent persisted.
    public func sliceKeys() -> Set<String> {
        guard let data = FileManager.default.contents(atPath: stateDirectory.file("slice.json").path),
            let value = try? JSONValue.parse(data)
        else { return [] }
        let objects = value["objects"]?.arrayValue ?? value.arrayValue ?? []
        return Set(objects.compactMap { object in
            guard let kind = object["kind"]?.stringValue, let name = object["name"]?.stringValue else { return nil }
            return "\(kind)/\(name)"
        })
    }

    /// The persisted slice as text, to check what it does and does not contain.
    public func sliceText() -> String {
        (try? String(contentsOf: stateDirectory.file("slice.json"), encoding: .utf8)) ?? ""
    }

    public func remove() {
        stop(signal: SIGKILL)
        try? FileManager.default.removeItem(at: logFile)
        stateDirectory.remove()
    }
}
