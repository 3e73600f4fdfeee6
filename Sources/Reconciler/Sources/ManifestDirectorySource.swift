import Crypto
import Foundation
import Logging
import Resources
import Routing
import ServiceLifecycle
import TLSSupport

/// Applies a directory of manifests at start and whenever it changes, pruning what was removed.
///
/// The directory is represented by a GitRepository object (`file://` URL) whose status carries the applied
/// revision (a digest of the files), the inventory used for pruning, and the last error — so
/// `steady describe gitrepository/manifests` shows why a broken file was not applied. A broken or
/// half-written file applies nothing: the last good state stays.
public struct ManifestDirectorySource: Service {
    public static let fieldManager = ManifestSync.fieldManager

    public let directory: URL
    public let objectName: String
    let objects: ObjectService
    let logger: Logger
    let resyncInterval: Duration

    public init(
        directory: URL, objects: ObjectService, logger: Logger, objectName: String = "manifests",
        resyncInterval: Duration = .seconds(300)
    ) {
        self.directory = directory.standardizedFileURL
        self.objects = objects
        self.logger = logger
        self.objectName = objectName
        self.resyncInterval = resyncInterval
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await watch() }
    }

    private func watch() async throws {
        let watcher = DirectoryWatcher(directory: directory)
        let clock = ContinuousClock()
        var lastSnapshot: DirectorySnapshot?
        var lastSync = clock.now
        try await watcher.run { snapshot in
            guard snapshot != lastSnapshot || clock.now - lastSync >= resyncInterval else { return }
            lastSnapshot = snapshot
            lastSync = clock.now
            await sync()
        }
    }

    /// Loads, validates and applies the directory once, through the same pipeline as `apply -f` and the Git
    /// sources; returns the recorded outcome.
    @discardableResult
    public func sync() async -> SyncOutcome {
        let documents = (try? ManifestDocuments.load(paths: [directory.path], recursive: true)) ?? []
        let revision = Self.revision(of: documents)
        // The stand-in GitRepository exists before the first apply, so that its status can be written.
        await declareSource()
        let previous = await inventory()
        let outcome: SyncOutcome
        switch await ManifestSync(objects: objects, logger: logger).sync(
            directory: directory, sourceName: objectName, previous: previous, prune: true)
        {
        case .applied(let inventory, let pruned):
            outcome = .applied(revision: revision, inventory: inventory, pruned: pruned)
        case .invalid(let errors):
            outcome = .invalid(errors)
        case .pruneBlocked(let message):
            outcome = .invalid([message])
        case .failed(let errors, _):
            outcome = .failed(revision: revision, errors)
        }
        await record(outcome)
        return outcome
    }

    /// What one sync did.
    public enum SyncOutcome: Sendable, Equatable {
        case applied(revision: String, inventory: [GitRepositorySpec.InventoryEntry], pruned: Int)
        case invalid([String])
        case failed(revision: String, [String])
    }

    private func inventory() async -> [GitRepositorySpec.InventoryEntry] {
        guard let object = try? await objects.get(Kinds.gitRepository, name: objectName),
            let repository = try? object.decode(as: GitRepository.self)
        else { return [] }
        return repository.status?.inventory ?? []
    }

    /// Applies the GitRepository that stands for the directory.
    private func declareSource() async {
        let spec: JSONValue = [
            "apiVersion": .string(API.apiVersion), "kind": "GitRepository",
            "metadata": ["name": .string(objectName)],
            "spec": ["url": .string("file://\(directory.path)"), "prune": true, "suspend": true],
        ]
        do {
            _ = try await objects.patch(
                Kinds.gitRepository, name: objectName, patch: .apply(spec), subresource: nil,
                options: WriteOptions(fieldManager: ManifestSync.fieldManager, force: true))
        } catch {
            logger.error("cannot record the manifests source", metadata: ["steady.error": "\(error)"])
        }
    }

    /// Writes the source's status.
    private func record(_ outcome: SyncOutcome) async {
        let condition: Condition
        var status: [String: JSONValue] = [:]
        switch outcome {
        case .applied(let revision, let inventory, let pruned):
            condition = Condition(
                type: "Ready", status: .true, reason: "Applied",
                message: "applied \(inventory.count) objects, pruned \(pruned)")
            status["lastAppliedRevision"] = .string(revision)
            status["lastAttemptedRevision"] = .string(revision)
            status["inventory"] = (try? JSONValue(encoding: inventory)) ?? []
            logger.info(
                "manifests applied",
                metadata: ["steady.revision": "\(revision)", "steady.objects": "\(inventory.count)"])
        case .invalid(let errors):
            condition = Condition(
                type: "Ready", status: .false, reason: GitSourceReason.invalidManifests.rawValue,
                message: errors.joined(separator: "\n"))
            for error in errors {
                logger.error("invalid manifest; keeping the last good state", metadata: ["steady.error": "\(error)"])
            }
        case .failed(let revision, let errors):
            let isConflict = errors.contains { $0.contains(ManifestSync.conflictPhrase) }
            condition = Condition(
                type: "Ready", status: .false,
                reason: (isConflict ? GitSourceReason.ownershipConflict : .applyFailed).rawValue,
                message: errors.joined(separator: "\n"))
            status["lastAttemptedRevision"] = .string(revision)
            for error in errors { logger.error("apply failed", metadata: ["steady.error": "\(error)"]) }
        }
        await SourceStatusWriter(objects: objects, logger: logger).write(
            objectName, fields: status, conditions: [condition])
    }

    /// A short digest of every document, identifying what was applied.
    static func revision(of documents: [ManifestDocument]) -> String {
        var hasher = SHA256()
        for document in documents {
            hasher.update(data: Data("\(document.file)\n\(document.index)\n".utf8))
            hasher.update(data: document.value.jsonData())
        }
        return "sha256:" + Hex.encode(hasher.finalize().prefix(12))
    }
}
