import Apply
import Foundation
import Logging
import Resources

/// One apply of a directory of manifests on behalf of a source object (a GitRepository, or the `--manifests`
/// directory's stand-in): the same strict validation, all-or-nothing rule, ownership and prune as `apply -f`,
/// through the shared ``Applier``.
///
/// The source's objects are the members of an ApplySet whose parent is the GitRepository itself: each carries
/// the set's `applyset.kubernetes.io/part-of` label, an object of another set is a conflict (never taken over),
/// and pruning deletes only objects of the set that are in the source's inventory. Such a conflict is reported
/// on both sources (``SourceConflicts``).
struct ManifestSync: Sendable {
    /// What one sync did.
    enum Outcome: Sendable, Equatable {
        /// Everything applied; `pruned` objects deleted.
        case applied(inventory: [GitRepositorySpec.InventoryEntry], pruned: Int)
        /// A document is broken: nothing was applied.
        case invalid([String])
        /// Some objects could not be applied (or pruned); what did apply is in `inventory`.
        case failed([String], inventory: [GitRepositorySpec.InventoryEntry])
        /// The tree yields no manifests where there were some: applying it would prune everything.
        case pruneBlocked(String)
    }

    static let fieldManager = "steady-manifests"
    /// In the error of an object another source manages (`Action/x is managed by another source, …`).
    static let conflictPhrase = "is managed by another source"

    let objects: ObjectService
    let logger: Logger

    /// Loads every manifest under `directory`, validates them all, and applies them as the members of source
    /// `sourceName`, pruning members of `previous` that are gone when `prune` is set.
    /// - Parameters:
    ///   - displayRoot: the prefix shown instead of `directory` in error messages (a path in the repository).
    ///   - suffix: appended to every error (such as `at commit abc123`).
    func sync(
        directory: URL, displayRoot: String? = nil, suffix: String = "", sourceName: String,
        previous: [GitRepositorySpec.InventoryEntry], prune: Bool
    ) async -> Outcome {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory)
        if !exists || !isDirectory.boolValue {
            let shown = displayRoot ?? directory.path
            if prune && !previous.isEmpty {
                return .pruneBlocked("\(shown): no such directory\(suffix); not pruning the \(previous.count) "
                    + "objects applied before until it is back")
            }
            return .invalid(["\(shown): no such directory\(suffix)"])
        }
        var documents: [ManifestDocument]
        do {
            documents = try ManifestDocuments.load(paths: [directory.path], recursive: true)
        } catch {
            return .invalid([display(error, directory: directory, root: displayRoot) + suffix])
        }
        if displayRoot != nil {
            for index in documents.indices {
                documents[index].file = display(documents[index].file, directory: directory, root: displayRoot)
            }
        }
        if documents.isEmpty && prune && !previous.isEmpty {
            return .pruneBlocked("\(displayRoot ?? directory.path) holds no manifests\(suffix); not pruning the "
                + "\(previous.count) objects applied before until some are back")
        }
        let validated = Applier.validate(documents)
        var errors = validated.errors.map { $0.description + suffix }
        if let ours = validated.objects.first(where: { $0.kind == GitRepositorySpec.kind && $0.name == sourceName }) {
            errors.append(
                "\(ours.source.file): document \(ours.source.index): metadata.name: the name gitrepository/"
                    + "\(sourceName) is reserved for this source\(suffix)")
        }
        guard errors.isEmpty else { return .invalid(errors) }
        return await apply(validated.objects, sourceName: sourceName, previous: previous, prune: prune)
    }

    private func apply(
        _ manifest: [ManifestObject], sourceName: String, previous: [GitRepositorySpec.InventoryEntry], prune: Bool
    ) async -> Outcome {
        var options = Applier.Options(fieldManager: Self.fieldManager, force: true, prune: prune, concurrency: 32)
        options.owner = ApplySet(
            name: sourceName, id: ApplySet.id(forParent: sourceName, kind: GitRepositorySpec.kind),
            previousKinds: Set(previous.map(\.kind)))
        options.ownedMembers = Set(previous.map { "\($0.kind)/\($0.name)" })
        let report: Applier.Report
        do {
            report = try await Applier(backend: ObjectServiceApplyBackend(objects: objects), options: options)
                .apply(manifest)
        } catch {
            return .failed(["\(error)"], inventory: previous)
        }
        let sources = Dictionary(manifest.map { ("\($0.kind)/\($0.name)", $0.source) }) { first, _ in first }
        let owners = report.results.contains { $0.error is OwnershipConflict } ? await sourceNamesByApplySet() : [:]
        var failures: [String] = []
        var claims: [SourceConflicts.Claim] = []
        var pruned = 0
        var kept = Set(previous)
        for result in report.results {
            let entry = GitRepositorySpec.InventoryEntry(kind: result.info.kind, name: result.name)
            if let error = result.error {
                let place = sources["\(entry.kind)/\(entry.name)"].map { "\($0.file): document \($0.index): " } ?? ""
                let verb = result.outcome == .pruned || result.name == "*" ? "prune" : "apply"
                if let conflict = error as? OwnershipConflict {
                    if let owner = owners[conflict.owner] {
                        claims.append(.init(owner: owner, kind: entry.kind, name: entry.name))
                    }
                    let owner = owners[conflict.owner].map { "gitrepository/\($0)" } ?? "ApplySet \(conflict.owner)"
                    failures.append(
                        "\(place)\(verb) \(result.displayName): \(entry.kind)/\(entry.name) \(Self.conflictPhrase), "
                            + "\(owner); remove it from one of the two sources")
                } else {
                    failures.append("\(place)\(verb) \(result.displayName): \(error)")
                }
            } else if result.outcome == .pruned {
                pruned += 1
                kept.remove(entry)
                logger.info("pruned", metadata: ["steady.kind": "\(entry.kind)", "steady.name": "\(entry.name)"])
            } else {
                kept.insert(entry)
            }
        }
        failures += report.warnings
        let current = Set(manifest.map { GitRepositorySpec.InventoryEntry(kind: $0.kind, name: $0.name) })
        let sorted = { (entries: Set<GitRepositorySpec.InventoryEntry>) in
            entries.sorted { ($0.kind, $0.name) < ($1.kind, $1.name) }
        }
        let inventory = failures.isEmpty ? sorted(current) : sorted(kept)
        // The owners of what this source could not take are told, and claims it no longer makes are withdrawn.
        await SourceConflicts(objects: objects, logger: logger).record(
            claimant: sourceName, claims: claims, inventory: inventory)
        guard failures.isEmpty else { return .failed(failures, inventory: inventory) }
        return .applied(inventory: inventory, pruned: pruned)
    }

    /// The GitRepository each ApplySet id stands for.
    private func sourceNamesByApplySet() async -> [String: String] {
        let names = (try? await objects.list(Kinds.gitRepository).items.compactMap { $0["metadata"]?["name"]?.stringValue }) ?? []
        return Dictionary(names.map { (ApplySet.id(forParent: $0, kind: GitRepositorySpec.kind), $0) }) { first, _ in first }
    }

    private func display(_ file: String, directory: URL, root: String?) -> String {
        guard let root else { return file }
        let base = directory.path.hasSuffix("/") ? directory.path : directory.path + "/"
        guard file.hasPrefix(base) else { return file == directory.path ? root : file }
        let relative = String(file.dropFirst(base.count))
        return root.isEmpty || root == "." ? relative : (root.hasSuffix("/") ? root : root + "/") + relative
    }

    private func display(_ error: ManifestError, directory: URL, root: String?) -> String {
        var error = error
        error.file = display(error.file, directory: directory, root: root)
        return error.description
    }
}
