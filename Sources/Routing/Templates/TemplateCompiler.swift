import Mustache
import Resources

/// Compiles Template bodies once, reporting syntax errors with their position.
public enum TemplateCompiler {
    /// Compiles a mustache or text body; raw-json needs none.
    ///
    /// The source is checked against `limits` before the mustache parser sees it: the parser recurses once per
    /// nested section, so an unchecked source could overflow the stack.
    public static func compile(
        _ source: String, field: String, limits: TemplateLimits = TemplateLimits()
    ) throws(FieldError) -> MustacheTemplate {
        try check(source, field: field, limits: limits)
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

    /// Rejects a source longer or more deeply nested than `limits` allow, without recursing.
    public static func check(_ source: String, field: String, limits: TemplateLimits) throws(FieldError) {
        let length = source.utf8.count
        if length > limits.maxLength {
            throw FieldError(
                path: field, reason: .tooLong,
                message: "template is \(length) bytes long; the limit is \(limits.maxLength)")
        }
        let scan = MustacheTagScanner(source)
        if scan.maxDepth > limits.maxDepth {
            throw FieldError(
                path: field, message: "sections nest \(scan.maxDepth) deep; the limit is \(limits.maxDepth)")
        }
        if let delimiter = scan.oneCharacterDelimiter {
            throw FieldError(
                path: field,
                message: "a set-delimiter tag chooses the one-character start delimiter \"\(delimiter)\", which the "
                    + "mustache parser cannot read safely; use two characters or more, such as {{=<% %>=}}")
        }
        if scan.maxTransforms > limits.maxTransforms {
            throw FieldError(
                path: field,
                message: "a tag applies \(scan.maxTransforms) transforms; the limit is \(limits.maxTransforms)")
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
