import Resources
import Routing

/// Checks slice objects before an agent applies them: the same admission the API server runs, the kinds a slice
/// may hold (a Runner only when it is the agent's own), and the agent's own policy (no `exec` actions unless
/// `--allow-exec`).
public struct SliceValidator: Sendable {
    /// Why one object cannot be applied.
    public enum Problem: Sendable, Equatable {
        /// The object is not valid; the message says where and why.
        case invalid(String)
        /// The object is an `exec` action and this agent was not started with `--allow-exec`.
        case execNotAllowed
    }

    /// Report reasons (CamelCase, as in conditions).
    public enum Reason {
        /// An object failed validation.
        public static let invalidSlice = "InvalidSlice"
        /// The slice holds `exec` actions and the agent does not allow them.
        public static let execNotAllowed = "ExecNotAllowed"
        /// The slice the agent assembled does not have the digest the controller sent.
        public static let digestMismatch = "DigestMismatch"
        /// The slice could not be written to the state directory.
        public static let storageFailed = "StorageFailed"
    }

    /// Whether `exec` actions may be applied.
    public var allowsExec: Bool
    /// The agent's runner: the only Runner its slice may hold (for its schedule). Nil accepts any name.
    public var runner: String?

    /// Creates a validator.
    public init(allowsExec: Bool, runner: String? = nil) {
        self.allowsExec = allowsExec
        self.runner = runner
    }

    /// The problem with one object, or nil when it can be applied.
    public func problem(with object: JSONValue, key: SliceKey) -> Problem? {
        guard AgentProtocol.sliceKinds.contains(key.kind), let info = Kinds.info(forKind: key.kind) else {
            return .invalid("kind \(key.kind) may not be in a slice")
        }
        guard object["kind"]?.stringValue == key.kind else {
            return .invalid("its kind is \(object["kind"]?.stringValue ?? "missing"), not \(key.kind)")
        }
        guard object["metadata"]?["name"]?.stringValue == key.name else {
            return .invalid("its metadata.name is \(object["metadata"]?["name"]?.stringValue ?? "missing"), not \(key.name)")
        }
        if key.kind == RunnerSpec.kind, let runner, key.name != runner {
            return .invalid("a slice holds only its own runner's Runner (\(runner)), not another runner's")
        }
        let admitted: JSONValue
        do {
            admitted = try Admission.admit(info, object)
        } catch {
            return .invalid(error.description)
        }
        if key.kind == ActionSpec.kind, !allowsExec,
            admitted["spec"]?["type"]?.stringValue == ActionSpec.ActionType.exec.rawValue
        {
            return .execNotAllowed
        }
        return nil
    }

    /// The reason and message a report gives for a set of problems, or nil when there are none.
    ///
    /// Invalid objects win over exec actions: they are a fault of the controller, not a policy of the agent.
    /// The message names every exec action and at most ten invalid objects.
    public static func summary(of problems: [SliceKey: Problem]) -> (reason: String, message: String)? {
        guard !problems.isEmpty else { return nil }
        var invalid: [String] = []
        var exec: [String] = []
        for (key, problem) in problems.sorted(by: { $0.key < $1.key }) {
            switch problem {
            case .invalid(let message): invalid.append("\(key): \(message)")
            case .execNotAllowed: exec.append(key.name)
            }
        }
        let execMessage =
            "exec actions are not allowed on this agent (start it with --allow-exec to allow them): "
            + exec.joined(separator: ", ")
        if invalid.isEmpty {
            return (Reason.execNotAllowed, execMessage)
        }
        var message = "the slice holds invalid objects: " + invalid.prefix(10).joined(separator: "; ")
        if invalid.count > 10 { message += "; and \(invalid.count - 10) more" }
        if !exec.isEmpty { message += "; and " + execMessage }
        return (Reason.invalidSlice, message)
    }
}
