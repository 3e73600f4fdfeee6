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
