import ArgumentParser
import Foundation
import Resources

/// `steady reconcile gitrepository/NAME [--timeout 2m]`: asks the controller to sync a Git source now and waits
/// for the result, as `flux reconcile source git` does.
///
/// It sets the annotation `steady.dev/requestedAt` to a new value (which kubectl can do as well:
/// `kubectl annotate --overwrite gitrepository/NAME steady.dev/requestedAt="$(date +%s)"`); the controller
/// answers by writing that value to `status.lastHandledReconcileAt` along with the outcome.
///
/// Exit status: 0 when the source is Ready, 1 when it is not (with the reason and message) or on timeout.
public struct ReconcileCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Sync a GitRepository now and wait for the result.")

    @OptionGroup public var connection: ConnectionOptions

    @Argument(help: ArgumentHelp("gitrepository/NAME or gitrepository NAME", valueName: "object"))
    public var objects: [String] = []

    @Option(help: "How long to wait, such as 30s, 5m or 1h.")
    public var timeout = "2m"

    /// Creates the command with default flags.
    public init() {}

    /// Checks the arguments.
    public func validate() throws {
        _ = try CommandSupport.seconds(timeout)
        let references = try CommandSupport.references(objects, allowKindOnly: false)
        guard references.allSatisfy({ $0.info.kind == GitRepositorySpec.kind }) else {
            throw ValidationError("only GitRepository sources can be reconciled: gitrepository/NAME")
        }
    }

    /// Annotates, then waits for the answer.
    public func run() async throws {
        try await CommandSupport.run {
            let seconds = try CommandSupport.seconds(timeout)
            let names = try CommandSupport.references(objects, allowKindOnly: false).flatMap(\.names)
            let info = Kinds.gitRepository
            let failed = try await connection.withClient { client in
                var failed = false
                for name in names {
                    let requested = Self.requestValue()
                    _ = try await client.mergePatch(
                        info, name: name,
                        patch: ["metadata": ["annotations": [GitRepositorySpec.requestedAtAnnotation: .string(requested)]]])
                    Console.out("► annotating gitrepository/\(name) for a sync now")
                    let result = try await Self.waitForAnswer(
                        name: name, requested: requested, client: client, seconds: seconds)
                    guard let result else {
                        Console.error("error: gitrepository/\(name) was not synced within \(timeout)")
                        failed = true
                        continue
                    }
                    let reason = result["reason"]?.stringValue ?? ""
                    let message = result["message"]?.stringValue ?? ""
                    if result["status"]?.stringValue == "True" {
                        Console.out("✔ gitrepository/\(name) reconciled: \(message)")
                    } else {
                        Console.error("✗ gitrepository/\(name) not ready: \(reason): \(message)")
                        failed = true
                    }
                }
                return failed
            }
            if failed { throw ExitCode.failure }
        }
    }

    /// A new value for the annotation: the time, to the nanosecond.
    static func requestValue() -> String {
        let now = Date()
        return "\(Timestamp.format(now))-\(Int(now.timeIntervalSince1970 * 1_000_000_000) % 1_000_000_000)"
    }

    /// The Ready condition once `status.lastHandledReconcileAt` is `requested`; nil on timeout.
    static func waitForAnswer(
        name: String, requested: String, client: APIClient, seconds: Double
    ) async throws -> JSONValue? {
        try await withThrowingTaskGroup(of: JSONValue?.self) { group in
            group.addTask {
                _ = try await WaitCommand.wait(
                    for: Kinds.gitRepository, name: name, once: false, client: client, progress: WaitProgress()
                ) { object in
                    object?["status"]?["lastHandledReconcileAt"]?.stringValue == requested
                }
                return try await client.get(Kinds.gitRepository, name: name).condition("Ready") ?? [:]
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
