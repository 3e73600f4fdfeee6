import Resources

/// The full check of an object before it is stored or sent: schema, semantics, expressions and templates.
///
/// The API server and the CLIs use the same function, so `apply` rejects locally what the server would.
public enum Admission {
    /// Checks and normalizes `object`.
    ///
    /// - Parameter compiled: where compiled expressions and templates are found and kept, so that later steps
    ///   (another admission of the same text, the reconcilers) do not compile them again; nil compiles afresh.
    public static func admit(
        _ info: KindInfo, _ object: JSONValue, compiled: CompiledCache? = nil
    ) throws(ValidationFailure) -> JSONValue {
        let normalized = try info.normalize(object)
        var errors: [FieldError] = []
        switch info.kind {
        case RouteSpec.kind:
            errors += checkExpression(normalized["spec"]?["input"]?.stringValue, at: "spec.input", compiled)
            for (index, key) in (normalized["spec"]?["dedup"]?["keys"]?.arrayValue ?? []).enumerated() {
                errors += checkExpression(key.stringValue, at: "spec.dedup.keys[\(index)]", compiled)
            }
        case TemplateSpec.kind:
            for field in ["title", "body"] {
                guard normalized["spec"]?["type"]?.stringValue != TemplateSpec.TemplateType.rawJSON.rawValue,
                    let source = normalized["spec"]?[field]?.stringValue
                else { continue }
                errors += checkTemplate(source, at: "spec.\(field)", compiled)
            }
        case ActionSpec.kind:
            // An email's subject is a template of its own, rendered over the event.
            if let subject = normalized["spec"]?["email"]?["subject"]?.stringValue {
                errors += checkTemplate(subject, at: "spec.email.subject", compiled)
            }
            // So is an http action's body.
            if let body = normalized["spec"]?["http"]?["body"]?.stringValue {
                errors += checkTemplate(body, at: "spec.http.body", compiled)
            }
        default:
            break
        }
        if !errors.isEmpty { throw ValidationFailure(errors) }
        return normalized
    }

    private static func checkTemplate(_ source: String, at path: String, _ compiled: CompiledCache?) -> [FieldError] {
        do {
            if let compiled {
                _ = try compiled.template(source, field: path)
            } else {
                _ = try TemplateCompiler.compile(source, field: path)
            }
            return []
        } catch {
            return [error]
        }
    }

    private static func checkExpression(
        _ source: String?, at path: String, _ compiled: CompiledCache?
    ) -> [FieldError] {
        guard let source else { return [] }
        do {
            if let compiled {
                _ = try compiled.expression(source)
            } else {
                _ = try Expression(source)
            }
            return []
        } catch {
            return [FieldError(path: path, message: "invalid expression: \(error.description)")]
        }
    }
}
