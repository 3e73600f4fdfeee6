/// The registry of every kind the API serves.
public enum Kinds {
    public static let runner = KindInfo.make(RunnerSpec.self)
    public static let assignment = KindInfo.make(AssignmentSpec.self)
    public static let route = KindInfo.make(RouteSpec.self)
    public static let action = KindInfo.make(ActionSpec.self)
    public static let template = KindInfo.make(TemplateSpec.self)
    public static let secret = KindInfo.makeSecret()
    public static let remoteRun = KindInfo.make(RemoteRunSpec.self)
    public static let gitRepository = KindInfo.make(GitRepositorySpec.self)

    /// In dependency order: what others refer to comes first, so an ordered apply creates references first.
    public static let all: [KindInfo] = [
        secret, template, action, route, runner, assignment, gitRepository, remoteRun,
    ]

    /// The execution records of the event pipeline: listed, never written, and not stored objects (like Kubernetes
    /// Events), so not in ``all``, which apply, delete, watches and the store go through.
    public static let execution = KindInfo.makeReadOnly(kind: "Execution", plural: "executions", shortNames: [])

    /// Every kind a user may name on the command line: ``all`` and the read-only ones.
    public static let named: [KindInfo] = all + [execution]

    public static func info(forKind kind: String) -> KindInfo? {
        all.first { $0.kind == kind }
    }

    public static func info(forPlural plural: String) -> KindInfo? {
        all.first { $0.plural == plural }
    }

    /// Resolves what a user types: `route`, `routes`, `Route`, `rt`, `routes.steady.dev`, `route.steady.dev/v1`;
    /// read-only kinds too (see ``named``).
    public static func resolve(_ text: String) -> KindInfo? {
        var name = text.lowercased()
        for suffix in [".\(API.group)/\(API.version)", ".\(API.version).\(API.group)", ".\(API.group)"]
        where name.hasSuffix(suffix) {
            name.removeLast(suffix.count)
        }
        return named.first { info in
            info.singular == name || info.plural == name || info.shortNames.contains(name)
        }
    }

    /// Every name a user may type for a kind, for "did you mean".
    public static var allNames: [String] {
        named.flatMap { [$0.singular, $0.plural] + $0.shortNames }
    }
}
