import Apply
import Crypto
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
    /// Where the last tree each source applied in full is kept, for incremental syncs; nil: always in full.
    var snapshots: ManifestSnapshots? = nil

    /// Loads every manifest under `directory`, validates them all, and applies them as the members of source
    /// `sourceName`, pruning members of `previous` that are gone when `prune` is set.
    ///
    /// With `isIncremental`, and the last tree this source applied in full in ``snapshots`` (and still what
    /// `previous` says), only the files whose text changed since are parsed, validated and sent; the objects of
    /// the others are reused, checked for duplicates with the new ones, and kept from pruning. All or nothing
    /// still holds: a broken document anywhere in the changed files applies nothing.
    /// - Parameters:
    ///   - displayRoot: the prefix shown instead of `directory` in error messages (a path in the repository).
    ///   - suffix: appended to every error (such as `at commit abc123`).
    func sync(
        directory: URL, displayRoot: String? = nil, suffix: String = "", sourceName: String,
        previous: [GitRepositorySpec.InventoryEntry], prune: Bool, isIncremental: Bool = false
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
        let files: [(file: String, text: String)]
        do {
            files = try ManifestDocuments.files(in: directory.path, recursive: true)
        } catch {
            return .invalid([display(error, directory: directory, root: displayRoot) + suffix])
        }
        var last = isIncremental ? snapshots?.snapshot(of: sourceName) : nil
        if let known = last, Set(known.values.flatMap { $0.objects.map(Self.entry) }) != Set(previous) {
            last = nil
        }
        // Unchanged files keep their validated objects; the others are parsed.
        var snapshot = ManifestSnapshots.Snapshot()
        var order: [String] = []
        var changed: [(file: String, digest: SHA256.Digest, documents: [ManifestDocument])] = []
        var declaredCount = 0
        for (file, text) in files {
            let shown = display(file, directory: directory, root: displayRoot)
            let digest = SHA256.hash(data: Data(text.utf8))
            order.append(shown)
            if let known = last?[shown], known.digest == digest {
                snapshot[shown] = known
                declaredCount += known.objects.count
                continue
            }
            var documents: [ManifestDocument]
            do {
                documents = try ManifestDocuments.parse(text, file: file)
            } catch {
                return .invalid([display(error, directory: directory, root: displayRoot) + suffix])
            }
            for index in documents.indices { documents[index].file = shown }
            changed.append((shown, digest, documents))
            declaredCount += documents.count
        }
        if declaredCount == 0 && prune && !previous.isEmpty {
            return .pruneBlocked("\(displayRoot ?? directory.path) holds no manifests\(suffix); not pruning the "
                + "\(previous.count) objects applied before until some are back")
        }
        let validated = Applier.validate(changed.flatMap(\.documents))
        guard validated.errors.isEmpty else { return .invalid(validated.errors.map { $0.description + suffix }) }
        let byFile = Dictionary(grouping: validated.objects, by: \.source.file)
        for file in changed { snapshot[file.file] = .init(digest: file.digest, objects: byFile[file.file] ?? []) }
        // Duplicates across changed and unchanged files, and the source's own name, over everything declared.
        let declared = Applier.rejectingDuplicates(order.flatMap { snapshot[$0]?.objects ?? [] })
        var errors = declared.errors.map { $0.description + suffix }
        if let ours = declared.objects.first(where: { $0.kind == GitRepositorySpec.kind && $0.name == sourceName }) {
            errors.append(
                "\(ours.source.file): document \(ours.source.index): metadata.name: the name gitrepository/"
                    + "\(sourceName) is reserved for this source\(suffix)")
        }
        guard errors.isEmpty else { return .invalid(errors) }
        let sent = last == nil ? declared.objects : validated.objects
        logger.debug(
            "manifests validated",
            metadata: [
                "steady.gitrepository": "\(sourceName)", "steady.files": "\(files.count)",
                "steady.files.changed": "\(changed.count)", "steady.objects.sent": "\(sent.count)",
            ])
        let outcome = await apply(
            sent, declared: declared.objects, sourceName: sourceName, previous: previous, prune: prune)
        if case .applied = outcome { snapshots?.record(snapshot, of: sourceName) }
        return outcome
    }

    /// The inventory entry of an object.
    static func entry(_ object: ManifestObject) -> GitRepositorySpec.InventoryEntry {
        GitRepositorySpec.InventoryEntry(kind: object.kind, name: object.name)
    }

    /// Applies `manifest` (all of `declared`, or the part that changed) and prunes what `declared` no longer holds.
    private func apply(
        _ manifest: [ManifestObject], declared: [ManifestObject], sourceName: String,
        previous: [GitRepositorySpec.InventoryEntry], prune: Bool
    ) async -> Outcome {
        var options = Applier.Options(fieldManager: Self.fieldManager, force: true, prune: prune, concurrency: 32)
        options.unchangedMembers = Set(declared.map { "\($0.kind)/\($0.name)" })
            .subtracting(manifest.map { "\($0.kind)/\($0.name)" })
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
        let current = Set(declared.map(Self.entry))
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
