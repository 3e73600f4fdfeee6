import ArgumentParser
import Foundation
import Resources

/// `steady import`: manifests made from another tool's configuration.
public struct ImportCommand: ParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Make steady manifests from another tool's configuration.",
        subcommands: [ImportPosteeCommand.self])

    /// Creates the command.
    public init() {}
}

/// `steady import postee cfg.yaml [-o DIR]`: a Postee configuration as steady manifests.
public struct ImportPosteeCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "postee",
        abstract: "Turn a Postee configuration into Routes, Actions, Templates, Secrets, Runners and Assignments.",
        discussion: """
            Route inputs written in Rego are translated to expressions when they use the common forms (input \
            paths, ==, !=, contains, startswith, endswith, and/or, not); Rego templates, unsupported action types \
            and other constructs are reported as warnings naming their line, never dropped silently. The result \
            is validated as apply validates it. Without -o, the manifests are printed as one YAML stream; with -o, \
            they are written to secrets.yaml (mode 0600), templates.yaml, actions.yaml, routes.yaml and \
            runners.yaml in DIR.
            """)

    @Argument(help: ArgumentHelp("The Postee configuration file.", valueName: "cfg.yaml"))
    public var file: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the manifests into this directory.", valueName: "DIR"))
    public var output: String?

    /// Creates the command with default flags.
    public init() {}

    /// Translates, validates, and writes or prints.
    public func run() async throws {
        try await CommandSupport.run {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw CommandError("cannot read \(file): \(error.localizedDescription)")
            }
            let result = try PosteeImporter.translate(text, file: file)
            for warning in result.warnings { Console.error("warning: \(warning)") }
            try Self.validate(result)
            if let output {
                try Self.write(result, to: output)
                let count = result.objects.count
                Console.error(
                    "wrote \(count) object\(count == 1 ? "" : "s") to \(output) with \(result.warnings.count) "
                        + "warning\(result.warnings.count == 1 ? "" : "s")")
            } else {
                Console.write(YAMLOutput.render(documents: result.objects))
            }
        }
    }

    /// Checks the manifests as `apply --dry-run` does locally, so that what is written applies.
    static func validate(_ result: PosteeImport) throws {
        let documents = result.files.flatMap { file in
            file.objects.enumerated().map { index, object in
                ManifestDocument(file: file.name, index: index + 1, line: 1, value: object)
            }
        }
        let errors = Applier.validate(documents).errors
        guard errors.isEmpty else {
            for error in errors { Console.error("error: \(error)") }
            throw CommandError("the translated manifests do not validate (a defect of the import: please report it)")
        }
    }

    /// Writes one YAML file per kind group into `directory`; Secrets only readable by their owner.
    static func write(_ result: PosteeImport, to directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CommandError("cannot create \(directory): \(error.localizedDescription)")
        }
        for file in result.files {
            let path = (directory as NSString).appendingPathComponent(file.name)
            let text = YAMLOutput.render(documents: file.objects)
            try AtomicFile.write(Array(text.utf8), to: path, mode: file.name == "secrets.yaml" ? 0o600 : 0o644)
        }
    }
}
