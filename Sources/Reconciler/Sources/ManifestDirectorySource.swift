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
    public static let fieldManager = "steady-manifests"

    public let directory: URL
    public let objectName: String
    let objects: ObjectService
    let logger: Logger
    let resyncInterval: Duration
    let concurrency = 32

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

    /// Loads, validates and applies the directory once; returns the recorded outcome.
    @discardableResult
    public func sync() async -> SyncOutcome {
        let outcome: SyncOutcome
        do {
            let documents = try ManifestDocuments.load(paths: [directory.path], recursive: true)
            let validated = ManifestValidation.objects(from: documents)
            var errors = validated.errors.map(\.description)
            var admitted: [ManifestObject] = []
            for object in validated.objects {
                do {
                    var checked = object
                    // The write admits it again; the shared cache spares it a second compilation.
                    checked.value = try Admission.admit(object.info, object.value, compiled: objects.compiled)
                    admitted.append(checked)
                } catch {
                    errors.append("\(object.source.file): document \(object.source.index): \(error)")
                }
            }
            if let ours = admitted.first(where: { $0.kind == GitRepositorySpec.kind && $0.name == objectName }) {
                errors.append("\(ours.source.file): document \(ours.source.index): the name gitrepository/\(objectName) is reserved for this manifests directory")
            }
            if errors.isEmpty {
                outcome = await apply(admitted, revision: Self.revision(of: documents))
            } else {
                outcome = .invalid(errors)
            }
        } catch {
            outcome = .invalid(["\(error)"])
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

    private func apply(_ manifest: [ManifestObject], revision: String) async -> SyncOutcome {
        let previous = await inventory()
        let ordered = manifest.sorted { left, right in
            let leftRank = Kinds.all.firstIndex { $0.kind == left.kind } ?? 0
            let rightRank = Kinds.all.firstIndex { $0.kind == right.kind } ?? 0
            return leftRank < rightRank
        }
        var failures: [String] = []
        // Kinds are applied in dependency order, each kind's objects concurrently.
        for kind in Kinds.all {
            let batch = ordered.filter { $0.kind == kind.kind }
            failures += await withTaskGroup(of: String?.self) { group in
                var results: [String] = []
                var next = batch.makeIterator()
                func submit() -> Bool {
                    guard let object = next.next() else { return false }
                    group.addTask { await applyOne(object) }
                    return true
                }
                for _ in 0..<concurrency where !submit() { break }
                while let result = await group.next() {
                    if let result { results.append(result) }
                    _ = submit()
                }
                return results
            }
        }
        let current = Set(manifest.map { GitRepositorySpec.InventoryEntry(kind: $0.kind, name: $0.name) })
        var pruned = 0
        for entry in previous where !current.contains(entry) {
            guard let info = Kinds.info(forKind: entry.kind) else { continue }
            do {
                _ = try await objects.delete(info, name: entry.name, options: WriteOptions(fieldManager: Self.fieldManager))
                pruned += 1
                logger.info("pruned", metadata: ["steady.kind": "\(entry.kind)", "steady.name": "\(entry.name)"])
            } catch where error.reason == .notFound {
                continue
            } catch {
                failures.append("prune \(entry.kind)/\(entry.name): \(error.message)")
            }
        }
        let inventory = current.sorted { ($0.kind, $0.name) < ($1.kind, $1.name) }
        if !failures.isEmpty { return .failed(revision: revision, failures) }
        return .applied(revision: revision, inventory: inventory, pruned: pruned)
    }

    private func applyOne(_ object: ManifestObject) async -> String? {
        do {
            _ = try await objects.patch(
                object.info, name: object.name, patch: .apply(object.value), subresource: nil,
                options: WriteOptions(fieldManager: Self.fieldManager, force: true))
            return nil
        } catch {
            return "\(object.source.file): document \(object.source.index): \(object.displayName): \(error.message)"
        }
    }

    private func inventory() async -> [GitRepositorySpec.InventoryEntry] {
        guard let object = try? await objects.get(Kinds.gitRepository, name: objectName),
            let repository = try? object.decode(as: GitRepository.self)
        else { return [] }
        return repository.status?.inventory ?? []
    }

    /// Writes the source object and its status; failures here are logged, never fatal.
    private func record(_ outcome: SyncOutcome) async {
        let spec: JSONValue = [
            "apiVersion": .string(API.apiVersion), "kind": "GitRepository",
            "metadata": ["name": .string(objectName)],
            "spec": ["url": .string("file://\(directory.path)"), "prune": true],
        ]
        var condition: Condition
        var status: [String: JSONValue] = [:]
        switch outcome {
        case .applied(let revision, let inventory, let pruned):
            condition = Condition(type: "Ready", status: .true, reason: "Applied", message: "applied \(inventory.count) objects, pruned \(pruned)")
            status["lastAppliedRevision"] = .string(revision)
            status["lastAttemptedRevision"] = .string(revision)
            status["inventory"] = (try? JSONValue(encoding: inventory)) ?? []
            logger.info("manifests applied", metadata: ["steady.revision": "\(revision)", "steady.objects": "\(inventory.count)"])
        case .invalid(let errors):
            condition = Condition(type: "Ready", status: .false, reason: "InvalidManifest", message: errors.joined(separator: "\n"))
            for error in errors { logger.error("invalid manifest; keeping the last good state", metadata: ["steady.error": "\(error)"]) }
        case .failed(let revision, let errors):
            condition = Condition(type: "Ready", status: .false, reason: "ApplyFailed", message: errors.joined(separator: "\n"))
            status["lastAttemptedRevision"] = .string(revision)
            for error in errors { logger.error("apply failed", metadata: ["steady.error": "\(error)"]) }
        }
        do {
            let existing = try? await objects.get(Kinds.gitRepository, name: objectName)
            let source = try await objects.patch(
                Kinds.gitRepository, name: objectName, patch: .apply(spec), subresource: nil,
                options: WriteOptions(fieldManager: Self.fieldManager, force: true)
            ).object
            var conditions = (try? (existing ?? source)["status"]?["conditions"].map { try $0.decode(as: [Condition].self) }) ?? nil ?? []
            condition.observedGeneration = source["metadata"]?["generation"]?.intValue
            conditions.set(condition)
            status["conditions"] = try JSONValue(encoding: conditions)
            status["observedGeneration"] = source["metadata"]?["generation"]
            _ = try await objects.patch(
                Kinds.gitRepository, name: objectName, patch: .merge(["status": .object(status)]), subresource: "status",
                options: WriteOptions(fieldManager: Self.fieldManager))
        } catch {
            logger.error("cannot record manifests status", metadata: ["steady.error": "\(error)"])
        }
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
