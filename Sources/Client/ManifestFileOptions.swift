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
}
