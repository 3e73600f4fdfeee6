import Resources
import Routing

/// Reports whether a Template compiles; a compile error carries its line and column.
public struct TemplateReconciler: StatusReconciler {
    /// Creates a reconciler.
    public init() {}

    public var info: KindInfo { Kinds.template }

    public func status(of object: JSONValue, in cache: ObjectCache) throws -> JSONValue {
        let spec = object["spec"]
        var problems: [ReadinessProblem] = []
        if spec?["type"]?.stringValue != TemplateSpec.TemplateType.rawJSON.rawValue {
            for field in ["title", "body"] {
                guard let source = spec?[field]?.stringValue else { continue }
                do {
                    _ = try TemplateCompiler.compile(source, field: "spec.\(field)")
                } catch {
                    problems.append(ReadinessProblem(reason: "CompileError", message: error.description))
                }
            }
        }
        return try StatusReport.status(of: object, problems: problems, readyMessage: "the template compiles")
    }
}
