import Crypto
import Foundation
import Resources

/// An ApplySet as in Kubernetes' KEP-3659: a parent object (here a Secret with no data) whose annotations list
/// the kinds its members may have, and a label that every member carries.
public struct ApplySet: Sendable {
    /// On the parent: the set's id.
    public static let idLabel = "applyset.kubernetes.io/id"
    /// On every member: the id of the set it belongs to.
    public static let partOfLabel = "applyset.kubernetes.io/part-of"
    /// On the parent: which tool manages the set.
    public static let toolingAnnotation = "applyset.kubernetes.io/tooling"
    /// On the parent: the group-kinds members may have, such as `Route.steady.dev,Action.steady.dev`.
    public static let groupKindsAnnotation = "applyset.kubernetes.io/contains-group-kinds"
    /// This tool's value of the tooling annotation.
    public static let tooling = "steady/v1"

    /// The parent Secret's name.
    public var name: String
    /// The id, from the parent's name.
    public var id: String
    /// The kinds the parent listed before this apply.
    public var previousKinds: Set<String>

    /// `applyset-<base64url(sha256("NAME..Secret.steady.dev"))>-v1`, unpadded, as the KEP (and kubectl) derive it
    /// from the parent's name, namespace (empty: cluster-scoped), kind and group.
    public static func id(forParent name: String) -> String {
        id(forParent: name, kind: Secret.kind)
    }

    /// The id of the ApplySet whose parent is the object `name` of `kind` (cluster-scoped, in steady's group).
    public static func id(forParent name: String, kind: String) -> String {
        let digest = SHA256.hash(data: Data("\(name)..\(kind).\(API.group)".utf8))
        let encoded = Data(digest).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "applyset-\(encoded)-v1"
    }

    /// Creates the ApplySet of a parent that records its own members (a source object).
    public init(name: String, id: String, previousKinds: Set<String>) {
        self.name = name
        self.id = id
        self.previousKinds = previousKinds
    }

    /// Labels every object as a member of the ApplySet `id`.
    public static func markMembers(_ objects: inout [ManifestObject], id: String) {
        for index in objects.indices {
            var labels = objects[index].value["metadata"]?["labels"]?.objectValue ?? [:]
            labels[partOfLabel] = .string(id)
            objects[index].value["metadata"]?["labels"] = .object(labels)
        }
    }

    /// `Action.steady.dev,Route.steady.dev` for kinds `Route` and `Action` (sorted).
    public static func groupKinds(_ kinds: Set<String>) -> String {
        kinds.sorted().map { "\($0).\(API.group)" }.joined(separator: ",")
    }

    /// The kinds in a contains-group-kinds annotation; entries of other groups or unknown kinds are ignored.
    public static func kinds(inGroupKinds text: String) -> Set<String> {
        var kinds: Set<String> = []
        for entry in text.split(separator: ",") {
            let trimmed = entry.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasSuffix(".\(API.group)") else { continue }
            let kind = String(trimmed.dropLast(API.group.count + 1))
            if Kinds.info(forKind: kind) != nil { kinds.insert(kind) }
        }
        return kinds
    }

    /// Reads the parent, if it exists, and checks that it is an ApplySet parent of this tool with this id.
    static func load(name: String, backend: any ApplyBackend) async throws -> ApplySet {
        var set = ApplySet(name: name, id: id(forParent: name), previousKinds: [])
        guard let parent = try await backend.get(Kinds.secret, name: name) else { return set }
        let labels = parent["metadata"]?["labels"]
        let annotations = parent["metadata"]?["annotations"]
        guard labels?[idLabel]?.stringValue == set.id else {
            throw backend.configurationError(
                "Secret \"\(name)\" exists but is not the parent of ApplySet \"\(name)\" (its label "
                    + "\(idLabel) is not \(set.id)); choose another --applyset name")
        }
        if let tool = annotations?[toolingAnnotation]?.stringValue, !tool.hasPrefix("steady/") {
            throw backend.configurationError(
                "ApplySet \"\(name)\" is managed by \(tool), not steady; refusing to change it")
        }
        set.previousKinds = kinds(inGroupKinds: annotations?[groupKindsAnnotation]?.stringValue ?? "")
        return set
    }

    /// The parent Secret listing `kinds`.
    func parent(kinds: Set<String>) -> JSONValue {
        [
            "apiVersion": .string(API.apiVersion),
            "kind": .string(Secret.kind),
            "metadata": [
                "name": .string(name),
                "labels": .object([ApplySet.idLabel: .string(id)]),
                "annotations": .object([
                    ApplySet.toolingAnnotation: .string(ApplySet.tooling),
                    ApplySet.groupKindsAnnotation: .string(ApplySet.groupKinds(kinds)),
                ]),
            ],
        ]
    }

    /// Writes the parent with `kinds` (server-side apply, forced: the parent belongs to this tool).
    func record(kinds: Set<String>, options: Applier.Options, backend: any ApplyBackend) async throws {
        _ = try await backend.apply(
            Kinds.secret, parent(kinds: kinds), fieldManager: options.fieldManager, force: true,
            dryRun: options.dryRun == .server)
    }
}
