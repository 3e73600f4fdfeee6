import Resources

/// Computes the status one kind should carry, from the object and the informer's cache, without I/O.
///
/// Reconcilers are level-triggered and idempotent: the status depends only on what the object and the cache
/// hold now, never on which change woke them. The `ControllerManager` reads the object, asks for its status and
/// writes it through the status subresource, which skips the write when nothing changed.
public protocol StatusReconciler: Sendable {
    /// The kind reconciled.
    var info: KindInfo { get }

    /// The status to merge into `object.status`: `observedGeneration`, `conditions` and kind-specific fields.
    ///
    /// Conditions other than those the reconciler owns are kept; `lastTransitionTime` changes only when a
    /// condition's status flips.
    func status(of object: JSONValue, in cache: ObjectCache) throws -> JSONValue
}

/// One reason an object is not Ready, as a `metav1.Condition` reason and message.
public struct ReadinessProblem: Sendable, Equatable {
    /// CamelCase and machine-readable, e.g. `MissingAction`.
    public var reason: String
    /// For a person, naming what is wrong, e.g. `action "open-ticket" not found`.
    public var message: String

    /// Creates a problem.
    public init(reason: String, message: String) {
        self.reason = reason
        self.message = message
    }

    /// A problem for objects that do not exist: `action "a" not found`, `actions "a", "b" not found`.
    public static func missing(_ noun: String, _ names: [String], reason: String) -> ReadinessProblem {
        let quoted = names.map { "\"\($0)\"" }.joined(separator: ", ")
        let message = names.count == 1 ? "\(noun) \(quoted) not found" : "\(noun)s \(quoted) not found"
        return ReadinessProblem(reason: reason, message: message)
    }
}

/// Building blocks shared by the reconcilers.
enum StatusReport {
    /// The `Ready` condition type every long-lived kind carries.
    static let ready = "Ready"

    /// The object's `metadata.generation`.
    static func generation(of object: JSONValue) -> Int64 {
        object["metadata"]?["generation"]?.intValue ?? 0
    }

    /// A status with `observedGeneration`, the object's conditions with `Ready` set from `problems` (and any of
    /// `conditions`), and `fields`.
    ///
    /// Ready is True with reason `Ready` and `readyMessage` when there is no problem; otherwise False with the
    /// first problem's reason and every problem's message.
    static func status(
        of object: JSONValue, problems: [ReadinessProblem], readyMessage: String,
        fields: [String: JSONValue] = [:], conditions extra: [Condition] = []
    ) throws -> JSONValue {
        let generation = generation(of: object)
        let condition: Condition
        if let first = problems.first {
            condition = Condition(
                type: ready, status: .false, reason: first.reason,
                message: problems.map(\.message).joined(separator: "; "), observedGeneration: generation)
        } else {
            condition = Condition(
                type: ready, status: .true, reason: "Ready", message: readyMessage, observedGeneration: generation)
        }
        var conditions = existingConditions(of: object)
        for other in extra { conditions.set(other) }
        conditions.set(condition)
        var status = fields
        status["observedGeneration"] = .int(generation)
        status["conditions"] = try JSONValue(encoding: conditions)
        return .object(status)
    }

    /// The object's current conditions; malformed entries are dropped.
    static func existingConditions(of object: JSONValue) -> [Condition] {
        (object["status"]?["conditions"]?.arrayValue ?? []).compactMap { try? $0.decode(as: Condition.self) }
    }

    /// The strings of a JSON array of strings; other entries are skipped.
    static func strings(_ value: JSONValue?) -> [String] {
        (value?.arrayValue ?? []).compactMap(\.stringValue)
    }

    /// A JSON array of strings.
    static func array(_ strings: [String]) -> JSONValue {
        .array(strings.map { .string($0) })
    }

    /// The distinct elements, in first-seen order.
    static func unique<Element: Hashable>(_ elements: [Element]) -> [Element] {
        var seen: Set<Element> = []
        return elements.filter { seen.insert($0).inserted }
    }
}
