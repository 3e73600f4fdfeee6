import ArgumentParser
import Foundation
import Resources

/// `steady logs remoterun/NAME [--runner R] [-f]`: prints a RemoteRun's stored output, from its `log`
/// subresource, and with `-f` follows it until the run is over. `steady logs runner/NAME [-f]` prints the output of
/// the runner's latest scheduled run (Runner `spec.schedule`), and with `-f` follows it while it goes.
///
/// Without `--runner`, each line is prefixed `runner | ` (stderr lines `runner (stderr) | `); with it, stdout lines
/// are printed as written and stderr lines prefixed `(stderr) | `. Exit status: 0, or 1 on error (unknown run or
/// runner).
public struct LogsCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print the output of a RemoteRun's runners, or of a runner's latest scheduled run.")

    @OptionGroup public var connection: ConnectionOptions

    @Argument(
        help: ArgumentHelp(
            "The run: remoterun/NAME or remoterun NAME; or runner/NAME for its latest scheduled run.",
            valueName: "remoterun/name"))
    public var object: [String] = []

    @Option(help: "Only this runner's output, without prefixes.")
    public var runner: String?

    @Flag(name: [.short, .customLong("follow")], help: "Keep printing output as it arrives, until the run is over.")
    public var follow = false

    /// Creates the command with default flags.
    public init() {}

    /// Checks the arguments.
    public func validate() throws {
        let (kind, _) = try target()
        if let runner, runner.isEmpty { throw ValidationError("--runner: name a runner of the run") }
        if kind.kind == RunnerSpec.kind && runner != nil {
            throw ValidationError("runner/NAME prints its latest scheduled run: --runner is for remoteruns")
        }
    }

    /// The kind and name, from `remoterun/NAME`, `remoterun NAME` or `runner/NAME`.
    func target() throws -> (KindInfo, String) {
        let references = try CommandSupport.references(object, allowKindOnly: false)
        guard references.count == 1, let reference = references.first, reference.names.count == 1,
            let name = reference.names.first
        else {
            throw ValidationError("name one run: remoterun/NAME")
        }
        guard [RemoteRunSpec.kind, RunnerSpec.kind].contains(reference.info.kind) else {
            throw ValidationError(
                "only remoteruns and runners have logs: remoterun/NAME or runner/NAME, not \(reference.info.singular)")
        }
        return (reference.info, name)
    }

    /// Prints the output as it arrives.
    public func run() async throws {
        try await CommandSupport.run {
            let (kind, name) = try target()
            try await connection.withClient { client in
                for try await text in RunLog(client: client, kind: kind, name: name, runner: runner, follow: follow) {
                    FileHandle.standardOutput.write(Data(text))
                }
            }
        }
    }
}
