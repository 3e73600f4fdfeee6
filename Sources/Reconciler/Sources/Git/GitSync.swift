import Apply
import Foundation
import Logging
import Resources

/// One sync of one GitRepository: resolve the revision, and when there is something to do, fetch the tree,
/// apply it and record the status. Every outcome is written to the status with a reason a person can act on.
struct GitSync: Sendable {
    /// How a sync ended, for ``GitSourceState``.
    enum Result: Sendable, Equatable {
        /// The revision `commit` was resolved (and applied, or refused, or already the one attempted).
        case attempted(commit: String)
        /// The revision `commit` was fetched but not all of it applied (an object another source manages, an API
        /// error): the next poll tries again.
        case applyFailed(commit: String)
        /// git failed (remote, credentials, timeout): the next poll tries again.
        case gitFailed
    }

    let name: String
    let spec: GitRepositorySpec
    let objects: ObjectService
    let runner: GitCommandRunner
    let cache: GitRepositoryCache
    let workDirectory: URL
    let logger: Logger
    /// The last tree each source applied in full: a new commit validates and sends only the files that changed.
    var snapshots: ManifestSnapshots? = nil

    private var writer: SourceStatusWriter { SourceStatusWriter(objects: objects, logger: logger) }
    private var timeout: Duration { spec.timeout?.duration ?? .seconds(60) }

    /// Runs the sync; `needsApply` says whether a resolved commit is worth fetching and applying.
    func run(_ sync: GitSourceState.Sync, needsApply: @Sendable (String) -> Bool) async -> Result {
        var fields: [String: JSONValue] = ["webhookPath": .string(GitSourceController.webhookPath(name))]
        if let request = sync.request { fields["lastHandledReconcileAt"] = .string(request) }
        var credentials = GitCredentials.none
        defer { credentials.remove() }
        var resolved: ResolvedRevision?
        do throws(GitFailure) {
            credentials = try await loadCredentials()
            let revision = try await cache.resolve(spec.ref, credentials: credentials, timeout: timeout)
            resolved = revision
            guard needsApply(revision.commit) else { return .attempted(commit: revision.commit) }
            fields["lastAttemptedRevision"] = .string(revision.revision)
            await writer.write(
                name, fields: [:],
                conditions: [
                    Condition(
                        type: "Reconciling", status: .true, reason: GitSourceReason.progressing.rawValue,
                        message: "fetching and applying \(revision.revision)")
                ])
            let tree = try await cache.tree(at: revision, credentials: credentials, timeout: timeout)
            let path = Self.normalized(spec.path)
            let directory = path.isEmpty ? tree : tree.appendingPathComponent(path)
            let previous = await inventory()
            // A forced sync (a spec edit, `steady reconcile`) validates and applies the whole tree, correcting
            // any drift; a new commit only the files that changed since the last tree applied in full.
            let outcome = await ManifestSync(objects: objects, logger: logger, snapshots: snapshots).sync(
                directory: directory, displayRoot: path.isEmpty ? "." : path,
                suffix: " (commit \(revision.commit.prefix(12)))", sourceName: name, previous: previous,
                prune: spec.prune ?? true, isIncremental: !sync.isForced)
            await record(outcome, revision: revision, fields: fields)
            if case .failed = outcome { return .applyFailed(commit: revision.commit) }
            return .attempted(commit: revision.commit)
        } catch {
            if let resolved { fields["lastAttemptedRevision"] = .string(resolved.revision) }
            logger.error(
                "git source failed",
                metadata: [
                    "steady.gitrepository": "\(name)", "steady.reason": "\(error.reason.rawValue)",
                    "steady.error": "\(error.message)",
                ])
            var conditions = [
                Condition(type: "Ready", status: .false, reason: error.reason.rawValue, message: error.message)
            ]
            if error.reason.isStalled {
                conditions.append(
                    Condition(
                        type: "Stalled", status: .true, reason: error.reason.rawValue,
                        message: "retrying will not help until the spec or its Secret changes"))
            }
            await writer.write(
                name, fields: fields, conditions: conditions,
                removing: error.reason.isStalled ? ["Reconciling"] : ["Reconciling", "Stalled"])
            return .gitFailed
        }
    }

    /// `manifests/` → `manifests`; `./` → empty.
    static func normalized(_ path: String?) -> String {
        (path ?? "").split(separator: "/").filter { $0 != "." && !$0.isEmpty }.joined(separator: "/")
    }

    private func record(_ outcome: ManifestSync.Outcome, revision: ResolvedRevision, fields: [String: JSONValue]) async {
        var fields = fields
        fields["artifact"] = ["revision": .string(revision.revision), "lastUpdateTime": .string(Timestamp.now())]
        let ready: Condition
        switch outcome {
        case .applied(let inventory, let pruned):
            fields["lastAppliedRevision"] = .string(revision.revision)
            fields["inventory"] = (try? JSONValue(encoding: inventory)) ?? []
            ready = Condition(
                type: "Ready", status: .true, reason: GitSourceReason.applied.rawValue,
                message: "applied \(inventory.count) objects at \(revision.revision), pruned \(pruned)")
            logger.info(
                "git source applied",
                metadata: [
                    "steady.gitrepository": "\(name)", "steady.revision": "\(revision.revision)",
                    "steady.objects": "\(inventory.count)", "steady.pruned": "\(pruned)",
                ])
        case .invalid(let errors):
            ready = Condition(
                type: "Ready", status: .false, reason: GitSourceReason.invalidManifests.rawValue,
                message: "nothing of \(revision.revision) was applied; the last good state stays:\n"
                    + errors.joined(separator: "\n"))
        case .pruneBlocked(let message):
            ready = Condition(
                type: "Ready", status: .false, reason: GitSourceReason.pruneBlocked.rawValue, message: message)
        case .failed(let errors, let inventory):
            fields["inventory"] = (try? JSONValue(encoding: inventory)) ?? []
            let isConflict = errors.contains { $0.contains(ManifestSync.conflictPhrase) }
            ready = Condition(
                type: "Ready", status: .false,
                reason: (isConflict ? GitSourceReason.ownershipConflict : .applyFailed).rawValue,
                message: errors.joined(separator: "\n"))
        }
        if ready.status == .false {
            logger.error(
                "git source not applied",
                metadata: [
                    "steady.gitrepository": "\(name)", "steady.reason": "\(ready.reason)",
                    "steady.error": "\(ready.message)",
                ])
        }
        await writer.write(name, fields: fields, conditions: [ready], removing: ["Reconciling", "Stalled"])
    }

    private func inventory() async -> [GitRepositorySpec.InventoryEntry] {
        guard let object = try? await objects.get(Kinds.gitRepository, name: name),
            let repository = try? object.decode(as: GitRepository.self)
        else { return [] }
        return repository.status?.inventory ?? []
    }

    /// The credentials in the secretRef Secret, if any.
    private func loadCredentials() async throws(GitFailure) -> GitCredentials {
        guard let reference = spec.secretRef else { return .none }
        let secret: Secret
        do {
            secret = try await objects.get(Kinds.secret, name: reference.name, revealSecrets: true).decode(as: Secret.self)
        } catch {
            throw GitFailure(
                reason: .invalidSecret,
                message: "cannot read Secret \"\(reference.name)\" named by spec.secretRef: \(error)")
        }
        var values: [String: String] = [:]
        for key in ["username", "password", "bearerToken", "identity", "knownHosts"] {
            values[key] = secret.value(forKey: key)
        }
        return try GitCredentials.make(url: spec.url, secret: values, parent: workDirectory)
    }
}
