import ArgumentParser
import Foundation
import Resources

/// `apply -f PATH...`: validates every document, then applies them to the controller with server-side apply.
///
/// Nothing is sent when any document is invalid. Objects are applied kind by kind in dependency order, many at
/// a time, and reported as kubectl does (`route.steady.dev/x created`). Exit status: 0 when everything
/// succeeded, 1 otherwise (the other objects are still applied, and every failure is listed at the end).
public struct ApplyCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply manifests to the controller with server-side apply.",
        discussion: """
            Every document is validated first, exactly as the controller validates it; if any is invalid, every \
            error is printed and nothing is sent. Objects are then applied in dependency order (Secret, Template, \
            Action, Route, Runner, Assignment, GitRepository, RemoteRun).

            With --prune --applyset NAME, the objects are recorded in an ApplySet whose parent is the Secret NAME, \
            and objects of that ApplySet that the manifests no longer declare are deleted.
            """)

    /// Output formats of `apply`.
    public enum Output: String, ExpressibleByArgument, Sendable, CaseIterable {
        case name, yaml, json
    }

    @OptionGroup public var connection: ConnectionOptions

    @OptionGroup public var manifests: ManifestFileOptions

    @Option(name: .customLong("dry-run"), help: "none, client (send nothing) or server (validate on the server).")
    public var dryRun: APIClient.DryRun = .none

    @Flag(help: "Delete objects of the ApplySet that the manifests no longer declare (needs --applyset).")
    public var prune = false

    @Option(help: ArgumentHelp("The ApplySet (parent Secret) that records what this apply manages.", valueName: "name"))
    public var applyset: String?

    @Option(name: .shortAndLong, help: "Print objects as name, yaml or json instead of a line each.")
    public var output: Output?

    @Flag(name: .customLong("force-conflicts"), help: "Take over fields that other field managers own.")
    public var forceConflicts = false

    @Option(name: .customLong("field-manager"), help: "The field manager that owns the applied fields.")
    public var fieldManager = "steady"

    @Option(help: "Requests in flight at once.")
    public var concurrency = 64

    @Flag(
        help: """
            After applying, wait until every applied object is Ready for its current generation and every runner \
            it affects has synced it; progress goes to standard error.
            """)
    public var wait = false

    @Option(help: "How long --wait waits, such as 30s, 2m or 1h.")
    public var timeout = "2m"

    /// Creates the command with default flags.
    public init() {}

    /// Checks flag combinations.
    public func validate() throws {
        if manifests.files.isEmpty {
            throw ValidationError("name what to apply: -f FILE, -f DIRECTORY or -f - for standard input")
        }
        if prune && applyset == nil {
            throw ValidationError("--prune needs --applyset NAME: steady prunes only objects of an ApplySet")
        }
        if let applyset, !Names.validateObjectName(applyset).isEmpty {
            throw ValidationError("--applyset \"\(applyset)\" is not a valid object name (lower case DNS-1123)")
        }
        if fieldManager.isEmpty {
            throw ValidationError("--field-manager must not be empty")
        }
        if concurrency < 1 {
            throw ValidationError("--concurrency must be at least 1")
        }
        if wait && dryRun != .none {
            throw ValidationError("--wait cannot be used with --dry-run: nothing would be applied to wait for")
        }
        _ = try CommandSupport.seconds(timeout)
    }

    /// Validates, applies and reports.
    public func run() async throws {
        try await CommandSupport.run {
            let objects = try manifests.validatedObjects {
                "error: nothing was applied: \(Wording.count($0, "error")) in the manifests"
            }
            guard !objects.isEmpty else {
                throw CommandError("no objects passed in to apply")
            }
            let options = Applier.Options(
                dryRun: dryRun, fieldManager: fieldManager, force: forceConflicts,
                applySet: applyset, prune: prune, concurrency: concurrency)
            let output = self.output
            let dryRun = self.dryRun
            let wait = self.wait
            let timeout = Duration.milliseconds(Int64(try CommandSupport.seconds(self.timeout) * 1000))
            let report = try await connection.withClient { client in
                let report = try await Applier(client: client, options: options).apply(objects) { result in
                    if output == .name, result.error == nil {
                        Console.out(result.displayName)
                    } else if output == nil, let line = result.line(dryRun: dryRun) {
                        Console.out(line)
                    }
                }
                if wait && report.failures.isEmpty {
                    let applied = report.results.filter { $0.outcome != nil && $0.outcome != .pruned }
                    try await ConvergenceWaiter(client: client).waitPrintingProgress(
                        for: applied.map { .init(info: $0.info, name: $0.name) },
                        revision: applied.compactMap(\.resourceVersion).max(), timeout: timeout)
                }
                return report
            }
            if let output, output != .name {
                let items = report.results.filter { $0.outcome != .pruned }.compactMap(\.object)
                let value: JSONValue =
                    items.count == 1
                    ? items[0] : ["apiVersion": "v1", "kind": "List", "items": .array(items), "metadata": [:]]
                Console.write(output == .yaml ? YAMLOutput.render(value) : JSONOutput.render(value))
                for result in report.results where result.outcome == .pruned {
                    Console.error("\(result.displayName) pruned\(Applier.suffix(dryRun))")
                }
            }
            for warning in report.warnings { Console.error("warning: \(warning)") }
            let failures = report.failures
            for failure in failures {
                Console.error(Self.message(for: failure))
            }
            if !failures.isEmpty { throw ExitCode.failure }
        }
    }

    /// `error: applying route.steady.dev/x: Error from server (...): ...`, with a hint for field conflicts.
    static func message(for failure: Applier.Result) -> String {
        let verb = failure.outcome == .pruned || failure.name == "*" ? "pruning" : "applying"
        var text = "error: \(verb) \(failure.displayName): "
        if let error = failure.error { text += "\(error)" }
        if let error = failure.error as? APIClientError, error.isConflict, !error.causes.isEmpty {
            text += "\n  (use --force-conflicts to take over these fields)"
        }
        return text
    }
}
