import ArgumentParser
import Resources

/// `-f PATH...` and `-R`: the manifests a command reads, as `apply` reads them.
public struct ManifestFileOptions: ParsableArguments, Sendable {
    @Option(
        name: [.customShort("f"), .customLong("filename")],
        help: ArgumentHelp("A manifest file, a directory of them, or - for standard input.", valueName: "path"))
    public var files: [String] = []

    @Flag(name: [.customShort("R"), .long], help: "Read directories recursively.")
    public var recursive = false

    public init() {}

    /// Every document in the named files and directories.
    public func load() throws -> [ManifestDocument] {
        try ManifestDocuments.load(paths: files, recursive: recursive)
    }

    /// The objects the manifests declare, validated as `apply` validates them. When any is invalid, every error
    /// is printed, then `summary` given their count, and the command exits with `failureCode`.
    func validatedObjects(failureCode: Int32 = 1, summary: ((Int) -> String)? = nil) throws -> [ManifestObject] {
        let (objects, errors) = Applier.validate(try load())
        guard errors.isEmpty else {
            for error in errors { Console.error(error.description) }
            if let summary { Console.error(summary(errors.count)) }
            throw ExitCode(failureCode)
        }
        return objects
    }
}
