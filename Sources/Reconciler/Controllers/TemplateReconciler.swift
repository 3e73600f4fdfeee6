import Resources
import Routing

/// Reports whether a Template compiles; a compile error carries its line and column.
public struct TemplateReconciler: StatusReconciler {
    /// Compiled templates, shared with admission so a stored template is not compiled again.
    public let compiled: CompiledCache

    /// Creates a reconciler sharing `compiled` with admission.
    public init(compiled: CompiledCache = CompiledCache()) {
        self.compiled = compiled
    }

    public var info: KindInfo { Kinds.template }

    public func status(of object: JSONValue, in cache: ObjectCache) throws -> JSONValue {
        let spec = object["spec"]
        var problems: [ReadinessProblem] = []
        if spec?["type"]?.stringValue != TemplateSpec.TemplateType.rawJSON.rawValue {
            for field in ["title", "body"] {
                guard let source = spec?[field]?.stringValue else { continue }
                do {
                    _ = try compiled.template(source, field: "spec.\(field)")
                } catch {
                    problems.append(ReadinessProblem(reason: "CompileError", message: error.description))
                }
            }
        }
        return try StatusReport.status(of: object, problems: problems, readyMessage: "the template compiles")
    }
}
