import ArgumentParser
import Resources

/// What `wait --for` waits for.
public enum WaitCondition: Sendable, Equatable {
    /// The condition of this type has this status (`True`, `False`, `Unknown`) for the current generation.
    case condition(type: String, status: String)
    /// The object no longer exists.
    case delete
    /// The object is Ready for its current generation and every runner it affects has synced it.
    case converged

    /// Parses `condition=Ready`, `condition=Ready=false`, `delete` or `converged`.
    public static func parse(_ text: String) throws -> WaitCondition {
        if text.lowercased() == "delete" { return .delete }
        if text.lowercased() == "converged" { return .converged }
        let parts = text.split(separator: "=", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[0].lowercased() == "condition", !parts[1].isEmpty else {
            throw ValidationError(
                "--for=\(text) is not supported: use condition=TYPE, condition=TYPE=true|false|unknown, delete "
                    + "or converged")
        }
        let status: String
        switch parts.count == 3 ? parts[2].lowercased() : "true" {
        case "true": status = "True"
        case "false": status = "False"
        case "unknown": status = "Unknown"
        default:
            throw ValidationError("--for=\(text): the condition status must be true, false or unknown")
        }
        return .condition(type: parts[1], status: status)
    }

    /// Whether `object` (nil when it does not exist) meets the condition. A condition recorded for an older
    /// generation than the object's does not count.
    public func isMet(_ object: JSONValue?) -> Bool {
        switch self {
        case .delete:
            return object == nil
        case .converged:
            return Self.condition(type: "Ready", status: "True").isMet(object)
        case .condition(let type, let status):
            guard let object, let condition = object.condition(type) else { return false }
            guard condition["status"]?.stringValue?.lowercased() == status.lowercased() else { return false }
            if let observed = condition["observedGeneration"]?.intValue,
                let generation = object["metadata"]?["generation"]?.intValue, observed < generation
            {
                return false
            }
            return true
        }
    }

    /// Why the condition will never be met, or nil: waiting for `Complete=True` on an object (a RemoteRun) whose
    /// `Failed` condition is True, which is final.
    public func failure(_ object: JSONValue?) -> String? {
        guard case .condition("Complete", "True") = self else { return nil }
        let failed = Self.condition(type: "Failed", status: "True")
        return failed.isMet(object) ? failed.describe(object) : nil
    }

    /// The current state in words: `Ready=False (MissingAction): route refers to ...`, `not found`, ...
    public func describe(_ object: JSONValue?) -> String {
        switch self {
        case .delete:
            return object == nil ? "deleted" : "still exists"
        case .converged:
            return Self.condition(type: "Ready", status: "True").describe(object)
        case .condition(let type, _):
            guard let object else { return "not found" }
            guard let condition = object.condition(type) else {
                return "no \(type) condition reported yet"
            }
            var text = "\(type)=\(condition["status"]?.stringValue ?? "")"
            if let reason = condition["reason"]?.stringValue, !reason.isEmpty { text += " (\(reason))" }
            if let message = condition["message"]?.stringValue, !message.isEmpty { text += ": \(message)" }
            if let observed = condition["observedGeneration"]?.intValue,
                let generation = object["metadata"]?["generation"]?.intValue, observed < generation
            {
                text += " [observed generation \(observed), current \(generation)]"
            }
            return text
        }
    }
}
