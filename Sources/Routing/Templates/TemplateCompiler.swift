import Mustache
import Resources

/// Compiles Template bodies once, reporting syntax errors with their position.
public enum TemplateCompiler {
    /// Compiles a mustache or text body; raw-json needs none.
    public static func compile(_ source: String, field: String) throws(FieldError) -> MustacheTemplate {
        do {
            return try MustacheTemplate(string: source)
        } catch let error as MustacheTemplate.ParserError {
            throw FieldError(
                path: field,
                message:
                    "\(error.context.lineNumber):\(error.context.columnNumber): \(describe(error.error)) in \"\(error.context.line)\""
            )
        } catch {
            throw FieldError(path: field, message: "invalid template: \(error)")
        }
    }

    private static func describe(_ error: any Error) -> String {
        guard let error = error as? MustacheTemplate.Error else { return "\(error)" }
        return switch error {
        case .sectionCloseNameIncorrect: "section closed with a different name than it was opened with"
        case .unfinishedName: "unfinished tag"
        case .expectedSectionEnd: "section is not closed"
        case .invalidSetDelimiter: "invalid set-delimiter tag"
        case .transformAppliedToInheritanceSection: "transform applied to an inheritance section"
        case .illegalTokenInsideInheritSection: "illegal token inside an inheritance section"
        case .textInsideInheritSection: "text inside an inheritance section"
        case .invalidConfigVariableSyntax: "invalid configuration variable"
        case .unrecognisedConfigVariable: "unrecognised configuration variable"
        @unknown default: "\(error)"
        }
    }
}
