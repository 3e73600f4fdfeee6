import Foundation
import Logging
import Resources
import SteadyTesting
import Testing

@testable import Reconciler

/// The controller's side of the one apply pipeline: ownership, prune and refusals, in process.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ManifestSyncTests {
    static func action(_ name: String) -> String {
        "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: \(name)}\nspec: {type: stdout}\n"
    }

    func names(_ objects: ObjectService) async throws -> Set<String> {
        Set(try await objects.list(Kinds.action).items.compactMap { $0["metadata"]?["name"]?.stringValue })
    }

    @Test func prunesOnlyItsOwnInventoryAndRefusesObjectsOfAnotherSource() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        let sync = ManifestSync(objects: objects, logger: Logger(label: "test"))
        let a = try TemporaryDirectory(prefix: "source-a")
        let b = try TemporaryDirectory(prefix: "source-b")
        defer {
            a.remove()
            b.remove()
        }
        // Made by hand, outside any source: never pruned.
        _ = try await objects.patch(
            Kinds.action, name: "by-hand", patch: .apply(try JSONValue.parse(Data(#"{"apiVersion":"steady.dev/v1","kind":"Action","metadata":{"name":"by-hand"},"spec":{"type":"stdout"}}"#.utf8))),
            subresource: nil, options: WriteOptions(fieldManager: "person"))
        try a.write(Self.action("one") + "---\n" + Self.action("two"), to: "a.yaml")
        let first = await sync.sync(directory: a.url, sourceName: "a", previous: [], prune: true)
        guard case .applied(let inventory, 0) = first else {
            Issue.record("unexpected \(first)")
            return
        }
        #expect(inventory.map(\.name) == ["one", "two"])

        // Source b declares "two" too: a conflict, reported, and "two" stays a's.
        try b.write(Self.action("two") + "---\n" + Self.action("three"), to: "b.yaml")
        let conflict = await sync.sync(directory: b.url, sourceName: "b", previous: [], prune: true)
        guard case .failed(let errors, let kept) = conflict else {
            Issue.record("unexpected \(conflict)")
            return
        }
        #expect(errors.contains { $0.contains("Action/two is managed by another source") }, "\(errors)")
        #expect(kept.map(\.name) == ["three"])

        // a drops "one": only "one" goes; by-hand and b's objects stay.
        try a.write(Self.action("two"), to: "a.yaml")
        let pruned = await sync.sync(directory: a.url, sourceName: "a", previous: inventory, prune: true)
        #expect(pruned == .applied(inventory: [.init(kind: "Action", name: "two")], pruned: 1))
        #expect(try await names(objects) == ["by-hand", "two", "three"])

        // An empty tree never prunes everything.
        try FileManager.default.removeItem(at: a.file("a.yaml"))
        let empty = await sync.sync(
            directory: a.url, sourceName: "a", previous: [.init(kind: "Action", name: "two")], prune: true)
        guard case .pruneBlocked = empty else {
            Issue.record("unexpected \(empty)")
            return
        }
        let missing = await sync.sync(
            directory: a.file("gone"), sourceName: "a", previous: [.init(kind: "Action", name: "two")], prune: true)
        guard case .pruneBlocked = missing else {
            Issue.record("unexpected \(missing)")
            return
        }
        #expect(try await names(objects) == ["by-hand", "two", "three"])
    }

    /// Declares the GitRepository that stands for a source, as the controller and the manifests directory do.
    func declareSource(_ name: String, _ objects: ObjectService) async throws {
        let text = #"{"apiVersion":"steady.dev/v1","kind":"GitRepository","metadata":{"name":"\#(name)"},"#
            + #""spec":{"url":"file:///\#(name)","suspend":true}}"#
        let object = try JSONValue.parse(Data(text.utf8))
        _ = try await objects.patch(
            Kinds.gitRepository, name: name, patch: .apply(object), subresource: nil,
            options: WriteOptions(fieldManager: "test"))
    }

    func status(_ name: String, _ objects: ObjectService) async throws -> GitRepositorySpec.Status? {
        try await objects.get(Kinds.gitRepository, name: name).decode(as: GitRepository.self).status
    }

    func partOf(_ name: String, _ objects: ObjectService) async throws -> String? {
        try await objects.get(Kinds.action, name: name)["metadata"]?["labels"]?["applyset.kubernetes.io/part-of"]?
            .stringValue
    }

    @Test func aConflictIsReportedOnTheOwnerTooUntilItGoesAwayAndNeverFlipsOwnership() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        let sync = ManifestSync(objects: objects, logger: Logger(label: "test"))
        let owner = try TemporaryDirectory(prefix: "owner")
        let claimant = try TemporaryDirectory(prefix: "claimant")
        defer {
            owner.remove()
            claimant.remove()
        }
        try await declareSource("owner", objects)
        try await declareSource("claimant", objects)
        try owner.write(Self.action("shared") + "---\n" + Self.action("mine"), to: "a.yaml")
        guard case .applied(let ownerInventory, _) = await sync.sync(
            directory: owner.url, sourceName: "owner", previous: [], prune: true)
        else {
            Issue.record("the owner did not apply")
            return
        }
        let ownerSet = try await partOf("shared", objects)

        // The claimant declares "shared" too, twice (a retry): refused both times, and said on both sources.
        try claimant.write(Self.action("shared") + "---\n" + Self.action("theirs"), to: "b.yaml")
        for _ in 0..<2 {
            let outcome = await sync.sync(directory: claimant.url, sourceName: "claimant", previous: [], prune: true)
            guard case .failed(let errors, _) = outcome else {
                Issue.record("unexpected \(outcome)")
                return
            }
            #expect(errors.contains { $0.contains("Action/shared is managed by another source, gitrepository/owner") })
            #expect(try await partOf("shared", objects) == ownerSet)
        }
        let claimed = try await status("owner", objects)
        #expect(claimed?.conflicts == [.init(kind: "Action", name: "shared", source: "claimant")])
        let condition = claimed?.conditions?.first { $0.type == SourceConflicts.conditionType }
        #expect(condition?.status == .true)
        #expect(condition?.reason == "OwnershipConflict")
        #expect(condition?.message.contains("gitrepository/claimant also declares Action/shared") == true)
        #expect(try await status("claimant", objects)?.conflicts == nil)

        // The claimant drops it: the owner's report goes.
        try claimant.write(Self.action("theirs"), to: "b.yaml")
        let dropped = await sync.sync(directory: claimant.url, sourceName: "claimant", previous: [], prune: true)
        #expect(dropped == .applied(inventory: [.init(kind: "Action", name: "theirs")], pruned: 0))
        var cleared = try await status("owner", objects)
        #expect(cleared?.conflicts == nil)
        #expect(cleared?.conditions?.contains { $0.type == SourceConflicts.conditionType } != true)

        // It claims it again, then the owner drops it (prunes it): the owner's report goes, and the claimant's
        // next try takes the object.
        try claimant.write(Self.action("shared") + "---\n" + Self.action("theirs"), to: "b.yaml")
        let again = await sync.sync(
            directory: claimant.url, sourceName: "claimant", previous: [.init(kind: "Action", name: "theirs")],
            prune: true)
        guard case .failed = again else {
            Issue.record("unexpected \(again)")
            return
        }
        #expect(try await status("owner", objects)?.conflicts?.count == 1)
        try owner.write(Self.action("mine"), to: "a.yaml")
        let pruned = await sync.sync(directory: owner.url, sourceName: "owner", previous: ownerInventory, prune: true)
        #expect(pruned == .applied(inventory: [.init(kind: "Action", name: "mine")], pruned: 1))
        cleared = try await status("owner", objects)
        #expect(cleared?.conflicts == nil)
        #expect(cleared?.conditions?.contains { $0.type == SourceConflicts.conditionType } != true)
        let taken = await sync.sync(
            directory: claimant.url, sourceName: "claimant", previous: [.init(kind: "Action", name: "theirs")],
            prune: true)
        guard case .applied = taken else {
            Issue.record("unexpected \(taken)")
            return
        }
        #expect(try await partOf("shared", objects) != ownerSet)
    }

    @Test func aDeletedClaimantsClaimsAreWithdrawn() {
        let current: [GitRepositorySpec.Conflict] = [
            .init(kind: "Action", name: "x", source: "gone"), .init(kind: "Action", name: "y", source: "other"),
        ]
        #expect(
            SourceConflicts.conflicts(of: "owner", current: current, claimant: "gone", claims: [], inventory: nil)
                == [.init(kind: "Action", name: "y", source: "other")])
        // A source never conflicts with itself, and a claim on another owner leaves this one alone.
        #expect(
            SourceConflicts.conflicts(
                of: "owner", current: [], claimant: "owner",
                claims: [.init(owner: "owner", kind: "Action", name: "x")], inventory: nil
            ).isEmpty)
        #expect(SourceConflicts.change([]).removing == [SourceConflicts.conditionType])
    }

    func actionType(_ name: String, _ objects: ObjectService) async throws -> String? {
        try await objects.get(Kinds.action, name: name)["spec"]?["type"]?.stringValue
    }

    @Test func aNewTreeSendsOnlyTheFilesThatChangedYetPrunesAndRefusesAsAWhole() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        let sync = ManifestSync(objects: objects, logger: Logger(label: "test"), snapshots: ManifestSnapshots())
        let directory = try TemporaryDirectory(prefix: "tree")
        defer { directory.remove() }
        let fileAction = { (name: String) in
            "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: \(name)}\n"
                + "spec: {type: file, file: {path: /tmp/\(name)}}\n"
        }
        try directory.write(Self.action("one") + "---\n" + Self.action("two"), to: "a.yaml")
        try directory.write(Self.action("three"), to: "b.yaml")
        guard case .applied(let inventory, 0) = await sync.sync(
            directory: directory.url, displayRoot: ".", sourceName: "s", previous: [], prune: true,
            isIncremental: true)
        else {
            Issue.record("the first tree did not apply")
            return
        }
        // Someone deletes "three" by hand: a sync that sends b.yaml makes it again, one that does not leaves it.
        _ = try await objects.delete(Kinds.action, name: "three", options: WriteOptions())

        // a.yaml changes (two changed, one removed): only it is sent; "one" is pruned; b.yaml's "three" is kept.
        try directory.write(fileAction("two"), to: "a.yaml")
        let changed = await sync.sync(
            directory: directory.url, displayRoot: ".", sourceName: "s", previous: inventory, prune: true,
            isIncremental: true)
        let kept: [GitRepositorySpec.InventoryEntry] = [
            .init(kind: "Action", name: "three"), .init(kind: "Action", name: "two"),
        ]
        #expect(changed == .applied(inventory: kept, pruned: 1))
        #expect(try await names(objects) == ["two"], "b.yaml did not change: not sent")
        #expect(try await actionType("two", objects) == "file")

        // A new file declaring what an unchanged file declares: refused whole, naming both files.
        try directory.write(Self.action("three") + "---\n" + Self.action("four"), to: "c.yaml")
        let duplicate = await sync.sync(
            directory: directory.url, displayRoot: ".", sourceName: "s", previous: kept, prune: true,
            isIncremental: true)
        guard case .invalid(let errors) = duplicate else {
            Issue.record("unexpected \(duplicate)")
            return
        }
        #expect(
            errors.contains { $0.contains("c.yaml: document 1") && $0.contains("already declared in b.yaml") },
            "\(errors)")
        #expect(try await names(objects) == ["two"])

        // A broken changed file: nothing of the tree is applied.
        try directory.write(Self.action("four"), to: "c.yaml")
        try directory.write(
            fileAction("two") + "---\napiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: five}\n"
                + "spec: {typo: 1}\n", to: "a.yaml")
        guard case .invalid = await sync.sync(
            directory: directory.url, displayRoot: ".", sourceName: "s", previous: kept, prune: true,
            isIncremental: true)
        else {
            Issue.record("a broken file was not refused")
            return
        }
        #expect(try await names(objects) == ["two"])

        // A full sync (a forced one) sends everything: the drift is corrected.
        try directory.write(fileAction("two"), to: "a.yaml")
        let full = await sync.sync(
            directory: directory.url, displayRoot: ".", sourceName: "s", previous: kept, prune: true)
        guard case .applied = full else {
            Issue.record("unexpected \(full)")
            return
        }
        #expect(try await names(objects) == ["two", "three", "four"])
    }

    @Test func aBrokenDocumentAppliesNothingAndNamesFileDocumentAndField() async throws {
        let fixture = try StoreFixture()
        defer { fixture.remove() }
        let objects = ObjectService(store: fixture.store)
        let directory = try TemporaryDirectory(prefix: "source")
        defer { directory.remove() }
        try directory.write(Self.action("fine"), to: "a.yaml")
        try directory.write(
            "apiVersion: steady.dev/v1\nkind: Action\nmetadata: {name: bad}\nspec: {type: stdout, typo: 1}\n",
            to: "sub/b.yaml")
        let outcome = await ManifestSync(objects: objects, logger: Logger(label: "test")).sync(
            directory: directory.url, displayRoot: "manifests", suffix: " (commit abc)", sourceName: "s",
            previous: [], prune: true)
        guard case .invalid(let errors) = outcome else {
            Issue.record("unexpected \(outcome)")
            return
        }
        #expect(errors.contains { $0.hasPrefix("manifests/sub/b.yaml: document 1") && $0.contains("spec.typo") && $0.hasSuffix("(commit abc)") }, "\(errors)")
        #expect(try await names(objects).isEmpty)
    }
}
