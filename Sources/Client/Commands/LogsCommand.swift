import ArgumentParser
import Foundation
import Resources

/// `steady logs remoterun/NAME [--runner R] [-f]`: prints a RemoteRun's stored output, from its `log`
/// subresource, and with `-f` follows it until the run is over.
///
/// Without `--runner`, each line is prefixed `runner | ` (stderr lines `runner (stderr) | `); with it, stdout lines
/// are printed as written and stderr lines prefixed `(stderr) | `. Exit status: 0, or 1 on error (unknown run or
/// runner).
public struct LogsCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print the output of a RemoteRun's runners.")

    @OptionGroup public var connection: ConnectionOptions

    @Argument(help: ArgumentHelp("The run: remoterun/NAME or remoterun NAME.", valueName: "remoterun/name"))
    public var object: [String] = []

    @Option(help: "Only this runner's output, without prefixes.")
    public var runner: String?

    @Flag(name: [.short, .customLong("follow")], help: "Keep printing output as it arrives, until the run is over.")
    public var follow = false

    /// Creates the command with default flags.
    public init() {}

    /// Checks the arguments.
    public func validate() throws {
        _ = try name()
        if let runner, runner.isEmpty { throw ValidationError("--runner: name a runner of the run") }
    }

    /// The run's name, from `remoterun/NAME` or `remoterun NAME`.
    func name() throws -> String {
        let references = try CommandSupport.references(object, allowKindOnly: false)
        guard references.count == 1, let reference = references.first, reference.names.count == 1,
            let name = reference.names.first
        else {
            throw ValidationError("name one run: remoterun/NAME")
        }
        guard reference.info.kind == RemoteRunSpec.kind else {
            throw ValidationError("only remoteruns have logs: remoterun/NAME, not \(reference.info.singular)")
        }
        return name
    }

    /// Prints the output as it arrives.
    public func run() async throws {
        try await CommandSupport.run {
            let name = try name()
            try await connection.withClient { client in
                for try await text in RunLog(client: client, name: name, runner: runner, follow: follow) {
                    FileHandle.standardOutput.write(Data(text))
                }
            }
        }
    }
}
