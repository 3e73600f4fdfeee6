import ArgumentParser
import Foundation
import Resources

/// `steady diff -f PATH`: what `apply` would change, as a unified diff of each live object against the result of a
/// server dry-run apply.
///
/// Exit status as kubectl's: 0 when nothing would change, 1 when something would, 2 (or more) on error.
public struct DiffCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what apply would change, as a unified diff of live objects against the applied result.",
        discussion: """
            Server-set fields (managedFields, resourceVersion, generation, uid, creationTimestamp) and status are \
            left out. Secret values are never shown: a key whose value would change shows as \
            `**redacted** (changed)` (telling needs an admin's credential, which may read Secret values).
            """)

    @OptionGroup public var connection: ConnectionOptions

    @OptionGroup public var manifests: ManifestFileOptions

    @Option(name: .customLong("field-manager"), help: "The field manager apply would use.")
    public var fieldManager = "steady"

    @Flag(name: .customLong("force-conflicts"), help: "Diff as if apply took over fields other managers own.")
    public var forceConflicts = false

    @Option(help: ArgumentHelp("Diff as if applied as part of this ApplySet (adds its label).", valueName: "name"))
    public var applyset: String?

    /// Creates the command with default flags.
    public init() {}

    /// Checks flags.
    public func validate() throws {
        if manifests.files.isEmpty { throw ValidationError("name what to diff: -f FILE, -f DIRECTORY or -f -") }
    }

    /// Validates, dry-runs and prints the differences.
    public func run() async throws {
        try await CommandSupport.run(failureCode: 2) {
            var objects = try manifests.validatedObjects(failureCode: 2)
            if let applyset { ApplySet.markMembers(&objects, id: ApplySet.id(forParent: applyset)) }
            let order = Dictionary(uniqueKeysWithValues: Kinds.all.enumerated().map { ($1.kind, $0) })
            let sorted = objects.enumerated().sorted { left, right in
                let l = order[left.element.info.kind] ?? 0
                let r = order[right.element.info.kind] ?? 0
                return l != r ? l < r : left.offset < right.offset
            }.map(\.element)
            let fieldManager = self.fieldManager
            let force = forceConflicts
            let outcomes = try await connection.withClient { client in
                try await Self.diffAll(sorted, client: client, fieldManager: fieldManager, force: force)
            }
            var differs = false
            var failed = false
            for outcome in outcomes {
                switch outcome {
                case .success(let text):
                    if !text.isEmpty {
                        Console.write(text)
                        differs = true
                    }
                case .failure(let error):
                    Console.error(Console.message(for: error))
                    failed = true
                }
            }
            if failed { throw ExitCode(2) }
            if differs { throw ExitCode(1) }
        }
    }

    /// Diffs every object, 16 at a time, results in input order. Connection failures are thrown.
    static func diffAll(
        _ objects: [ManifestObject], client: APIClient, fieldManager: String, force: Bool
    ) async throws -> [Result<String, APIClientError>] {
        var results = [Result<String, APIClientError>?](repeating: nil, count: objects.count)
        try await withThrowingTaskGroup(of: (Int, Result<String, APIClientError>).self) { group in
            var next = 0
            func start() {
                let index = next
                let object = objects[index]
                next += 1
                group.addTask {
                    (index, try await diff(object, client: client, fieldManager: fieldManager, force: force))
                }
            }
            while next < objects.count && next < 16 { start() }
            for try await (index, result) in group {
                results[index] = result
                if next < objects.count { start() }
            }
        }
        return results.compactMap { $0 }
    }

    private static func diff(
        _ object: ManifestObject, client: APIClient, fieldManager: String, force: Bool
    ) async throws -> Result<String, APIClientError> {
        do {
            var live: JSONValue?
            do {
                live = try await client.get(object.info, name: object.name)
            } catch let error as APIClientError where error.isNotFound {
                live = nil
            }
            var merged = try await client.apply(
                object.info, Applier.appliedConfiguration(object.value), fieldManager: fieldManager, force: force,
                dryRun: true
            ).object
            if object.info.kind == Secret.kind, live != nil {
                // Only an admin may read the values; for anyone else changes of value stay invisible.
                let revealed = try? await client.get(object.info, name: object.name, reveal: true)
                merged = markingChangedValues(in: merged, desired: object.value, revealed: revealed)
            }
            return .success(text(live: live, merged: merged, displayName: object.displayName))
        } catch let error as APIClientError where error.code == .server {
            return .failure(error)
        }
    }

    /// The unified diff of the live object (empty when absent) against the merged one, without server-set fields
    /// and status; empty when they are the same.
    static func text(live: JSONValue?, merged: JSONValue, displayName: String) -> String {
        let old = live.map { YAMLOutput.render(comparable($0)) } ?? ""
        let new = YAMLOutput.render(comparable(merged))
        return UnifiedDiff.render(old: old, new: new, oldName: "live/\(displayName)", newName: "merged/\(displayName)")
    }

    /// The merged Secret (values redacted) with `**redacted** (changed)` for each key whose desired value differs
    /// from the revealed live one; values themselves never appear.
    static func markingChangedValues(in merged: JSONValue, desired: JSONValue, revealed: JSONValue?) -> JSONValue {
        guard let live = revealed?["data"]?.objectValue, let wanted = desired["data"]?.objectValue else { return merged }
        var copy = merged
        for (key, value) in wanted where live[key] != nil && live[key] != value {
            copy["data"]?[key] = .string("\(Secret.redactedValue) (changed)")
        }
        return copy
    }

    /// The object without what the server sets or the apply does not control.
    static func comparable(_ object: JSONValue) -> JSONValue {
        var copy = object
        copy["status"] = nil
        for key in ["managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"] {
            copy["metadata"]?[key] = nil
        }
        return copy
    }
}
