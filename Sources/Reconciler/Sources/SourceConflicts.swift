import Foundation
import Logging
import Resources

/// Reports an object that two sources declare on both of them. The source that cannot apply it (the claimant)
/// says so in its own `Ready` (`OwnershipConflict`); this records the claim on the owner too: its
/// `status.conflicts` lists the object and the claimant, with a `Conflicted` condition, while its `Ready` and its
/// ownership stay as they are. The claim goes when the claimant stops declaring the object, when the owner stops
/// declaring it, or when the claimant is deleted.
struct SourceConflicts: Sendable {
    /// The condition type on the owner.
    static let conditionType = "Conflicted"

    /// An object `claimant` declares that `owner` manages.
    struct Claim: Sendable, Hashable {
        var owner: String
        var kind: String
        var name: String
    }

    let objects: ObjectService
    let logger: Logger

    /// Records that `claimant` now claims exactly `claims`, and (when it applied) that it manages `inventory`:
    /// every source's `status.conflicts` is brought up to date, writing only those that change.
    func record(claimant: String, claims: [Claim], inventory: [GitRepositorySpec.InventoryEntry]?) async {
        let sources: [GitRepository]
        do {
            sources = try await objects.list(Kinds.gitRepository).items.map { try $0.decode(as: GitRepository.self) }
        } catch {
            logger.error(
                "cannot read the sources to record a conflict",
                metadata: ["steady.gitrepository": "\(claimant)", "steady.error": "\(error)"])
            return
        }
        let writer = SourceStatusWriter(objects: objects, logger: logger)
        for source in sources {
            let owner = source.metadata.name
            let current = source.status?.conflicts ?? []
            let update = { (current: [GitRepositorySpec.Conflict]) in
                Self.conflicts(
                    of: owner, current: current, claimant: claimant, claims: claims,
                    inventory: owner == claimant ? inventory : nil)
            }
            guard update(current) != current else { continue }
            await writer.write(owner) { status in Self.change(update(status.conflicts ?? [])) }
        }
    }

    /// The conflicts of `owner` once `claimant` claims exactly `claims`; with `inventory` (the owner's own, when the
    /// owner is the one that just applied), claims on objects it no longer manages are dropped.
    static func conflicts(
        of owner: String, current: [GitRepositorySpec.Conflict], claimant: String, claims: [Claim],
        inventory: [GitRepositorySpec.InventoryEntry]?
    ) -> [GitRepositorySpec.Conflict] {
        var conflicts = Set(current.filter { $0.source != claimant && $0.source != owner })
        for claim in claims where claim.owner == owner && claimant != owner {
            conflicts.insert(.init(kind: claim.kind, name: claim.name, source: claimant))
        }
        if let inventory {
            let managed = Set(inventory.map { "\($0.kind)/\($0.name)" })
            conflicts = conflicts.filter { managed.contains("\($0.kind)/\($0.name)") }
        }
        return conflicts.sorted { ($0.source, $0.kind, $0.name) < ($1.source, $1.kind, $1.name) }
    }

    /// The status change that records `conflicts`: the list and a `Conflicted` condition, or neither.
    static func change(_ conflicts: [GitRepositorySpec.Conflict]) -> SourceStatusWriter.Change {
        guard !conflicts.isEmpty else {
            return .init(fields: ["conflicts": .null], removing: [conditionType])
        }
        let bySource = Dictionary(grouping: conflicts, by: \.source)
        let lines = bySource.keys.sorted().map { source in
            let objects = (bySource[source] ?? []).map { "\($0.kind)/\($0.name)" }.joined(separator: ", ")
            return "gitrepository/\(source) also declares \(objects)"
        }
        let message = lines.joined(separator: "; ")
            + ". This source keeps managing them and the other does not apply them; remove them from one of the two "
            + "sources"
        return .init(
            fields: ["conflicts": (try? JSONValue(encoding: conflicts)) ?? .null],
            conditions: [
                Condition(
                    type: conditionType, status: .true, reason: GitSourceReason.ownershipConflict.rawValue,
                    message: message)
            ])
    }
}
