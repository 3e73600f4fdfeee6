import ArgumentParser
import Foundation
import Resources

/// `steady delete -f PATH | KIND NAME... | KIND/NAME... | KIND -l SELECTOR`: deletes objects and prints
/// `route.steady.dev "x" deleted`.
public struct DeleteCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete objects named on the command line, selected by label, or declared in manifests.")

    @OptionGroup public var connection: ConnectionOptions

    @Argument(help: ArgumentHelp("KIND NAME..., KIND/NAME..., or KIND with -l or --all.", valueName: "object"))
    public var objects: [String] = []

    @OptionGroup public var manifests: ManifestFileOptions

    @Option(name: [.customShort("l"), .long], help: "Delete the objects of KIND with these labels.")
    public var selector: String?

    @Flag(help: "Delete every object of KIND.")
    public var all = false

    @Flag(name: .customLong("ignore-not-found"), help: "Treat objects that do not exist as deleted.")
    public var ignoreNotFound = false

    @Option(name: .customLong("dry-run"), help: "none, client (send nothing) or server (check on the server).")
    public var dryRun: APIClient.DryRun = .none

    /// Creates the command with default flags.
    public init() {}

    /// Checks flag combinations.
    public func validate() throws {
        if manifests.files.isEmpty == objects.isEmpty {
            throw ValidationError("name what to delete: KIND NAME..., KIND/NAME..., or -f PATH (not both)")
        }
        if selector != nil && all {
            throw ValidationError("give -l or --all, not both")
        }
    }

    /// Resolves targets, then deletes them dependents first.
    public func run() async throws {
        try await CommandSupport.run {
            let targets = try resolveTargets()
            var failed = false
            try await connection.withClient { client in
                var expanded: [(info: KindInfo, name: String)] = []
                for target in targets {
                    if target.names.isEmpty {
                        let list = try await client.list(target.info, labelSelector: selector)
                        expanded += list.items.compactMap { item in
                            item["metadata"]?["name"]?.stringValue.map { (target.info, $0) }
                        }
                    } else {
                        expanded += target.names.map { (target.info, $0) }
                    }
                }
                if expanded.isEmpty {
                    Console.error("No resources found.")
                    return
                }
                let order = Dictionary(uniqueKeysWithValues: Kinds.all.enumerated().map { ($1.kind, $0) })
                // Dependents first, so that nothing is left referring to what was just deleted.
                let sorted = expanded.enumerated().sorted { left, right in
                    let l = order[left.element.info.kind] ?? 0
                    let r = order[right.element.info.kind] ?? 0
                    return l != r ? l > r : left.offset < right.offset
                }.map(\.element)
                // Kind by kind (dependents first), many deletes at a time within a kind; printed in order.
                let dryRun = self.dryRun
                let ignoreNotFound = self.ignoreNotFound
                var start = 0
                while start < sorted.count {
                    let kind = sorted[start].info.kind
                    var end = start
                    while end < sorted.count && sorted[end].info.kind == kind { end += 1 }
                    let batch = Array(sorted[start..<end])
                    start = end
                    let outcomes = try await Self.delete(
                        batch, dryRun: dryRun, ignoreNotFound: ignoreNotFound, client: client)
                    for outcome in outcomes {
                        switch outcome {
                        case .success(let line?): Console.out(line)
                        case .success(nil): break
                        case .failure(let error):
                            Console.error(Console.message(for: error))
                            failed = true
                        }
                    }
                }
            }
            if failed { throw ExitCode.failure }
        }
    }

    /// Deletes one kind's objects, 32 at a time: the line to print for each (nil when it was already gone and
    /// that is fine) or the server's error, in input order. Connection failures are thrown.
    static func delete(
        _ batch: [(info: KindInfo, name: String)], dryRun: APIClient.DryRun, ignoreNotFound: Bool,
        client: APIClient
    ) async throws -> [Result<String?, APIClientError>] {
        var results = [Result<String?, APIClientError>?](repeating: nil, count: batch.count)
        try await withThrowingTaskGroup(of: (Int, Result<String?, APIClientError>).self) { group in
            var next = 0
            func start() {
                let index = next
                let (info, name) = batch[index]
                next += 1
                group.addTask {
                    let line = "\(info.qualifiedName) \"\(name)\" deleted\(Applier.suffix(dryRun))"
                    do {
                        if dryRun == .client {
                            _ = try await client.get(info, name: name)
                        } else {
                            _ = try await client.delete(info, name: name, dryRun: dryRun == .server)
                        }
                        return (index, .success(line))
                    } catch let error as APIClientError where error.isNotFound && ignoreNotFound {
                        return (index, .success(nil))
                    } catch let error as APIClientError where error.code == .server {
                        return (index, .failure(error))
                    }
                }
            }
            while next < batch.count && next < 32 { start() }
            for try await (index, result) in group {
                results[index] = result
                if next < batch.count { start() }
            }
        }
        return results.compactMap { $0 }
    }

    /// Kinds with names, or kinds with no names (meaning: list them with the selector).
    private func resolveTargets() throws -> [(info: KindInfo, names: [String])] {
        if !manifests.files.isEmpty {
            let documents = try manifests.load()
            var targets: [(info: KindInfo, names: [String])] = []
            var errors: [ManifestError] = []
            for document in documents {
                do throws(FieldError) {
                    let info = try ManifestValidation.kindInfo(of: document.value)
                    guard let name = document.value["metadata"]?["name"]?.stringValue, !name.isEmpty else {
                        throw FieldError(path: "metadata.name", reason: .required, message: "required field is missing")
                    }
                    if let index = targets.firstIndex(where: { $0.info.kind == info.kind }) {
                        if !targets[index].names.contains(name) { targets[index].names.append(name) }
                    } else {
                        targets.append((info, [name]))
                    }
                } catch {
                    errors.append(
                        ManifestError(
                            file: document.file, document: document.index, line: document.line,
                            fieldPath: error.path.isEmpty ? nil : error.path, message: error.message))
                }
            }
            guard errors.isEmpty else {
                for error in errors { Console.error(error.description) }
                throw ExitCode.failure
            }
            return targets
        }
        let references = try CommandSupport.references(objects, allowKindOnly: true)
        for reference in references where reference.names.isEmpty && selector == nil && !all {
            throw ValidationError(
                "name the \(reference.info.plural) to delete, or select them with -l SELECTOR or --all")
        }
        if references.contains(where: { !$0.names.isEmpty }) && (selector != nil || all) {
            throw ValidationError("give names or -l/--all, not both")
        }
        return references
    }
}
