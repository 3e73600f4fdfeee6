import Routing

/// Translates the common forms of a Postee route's Rego `input` into a steady route expression.
///
/// Understood: `input.X` paths (with `[0]` and `["key"]`), string, number, boolean and null literals (backtick
/// raw strings too), `==`, `!=`, `<`, `<=`, `>`, `>=`, the functions the expression language shares with Rego
/// (`contains`, `startswith`, `endswith`, `lower`, `upper`, `count`, `regex.match`, `re_match`), `and`/`or` (and
/// `&&`/`||`), `not` at the start of a condition, and several conditions on separate lines or separated by `;`,
/// which Rego joins with AND. Anything else (iteration with `_` or `some`, assignments, comprehensions, imports,
/// functions the expression language lacks) is refused with the reason, so that it is reported, never guessed.
enum RegoTranslator {
    struct Failure: Error, Equatable, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    static func translate(_ rego: String) throws(Failure) -> String {
        let conditions = try split(rego)
        guard !conditions.isEmpty else { return "" }
        var translated: [String] = []
        for condition in conditions {
            translated.append(try rewrite(condition))
        }
        let result =
            translated.count == 1 ? translated[0] : translated.map { "(\($0))" }.joined(separator: " && ")
        do {
            _ = try Expression(result)
        } catch {
            throw Failure(reason: "the translation \(result) is not a valid expression: \(error.description)")
        }
        return result
    }

    /// The conditions of a Rego body: lines and `;`-separated parts outside strings and brackets, without comments.
    static func split(_ rego: String) throws(Failure) -> [String] {
        var conditions: [String] = []
        var current = ""
        var depth = 0
        var quote: Character?
        var escaped = false
        var inComment = false
        func finish() {
            let condition = current.trimmingCharacters(in: .whitespaces)
            if !condition.isEmpty { conditions.append(condition) }
            current = ""
        }
        for character in rego {
            if inComment {
                if character.isNewline { inComment = false } else { continue }
            }
            if let open = quote {
                current.append(character)
                if escaped {
                    escaped = false
                } else if character == "\\" && open == "\"" {
                    escaped = true
                } else if character == open {
                    quote = nil
                }
                continue
            }
            switch character {
            case "\"", "`":
                quote = character
                current.append(character)
            case "#":
                inComment = true
            case "(", "[":
                depth += 1
                current.append(character)
            case ")", "]":
                depth -= 1
                current.append(character)
            case ";" where depth == 0:
                finish()
            case _ where character.isNewline:
                // A line that ends inside brackets or after an operator continues on the next line.
                let trimmed = current.trimmingCharacters(in: .whitespaces)
                let continues = ["&&", "||", " and", " or", ","].contains { trimmed.hasSuffix($0) }
                if depth > 0 || continues { current.append(" ") } else { finish() }
            default:
                current.append(character)
            }
        }
        if quote != nil { throw Failure(reason: "a string is not closed") }
        finish()
        return conditions
    }

    /// One condition with Rego spellings replaced by the expression language's; `not X` becomes `!(X)`, where
    /// X runs to the next `and`/`or` (or closing bracket) at its own depth.
    private static func rewrite(_ condition: String) throws(Failure) -> String {
        var output = ""
        var depth = 0
        // The bracket depths at which a `not` is still open.
        var openNots: [Int] = []
        func closeNots(atOrAbove level: Int) {
            while let last = openNots.last, last >= level {
                let spaces = output.reversed().prefix { $0 == " " }.count
                output = String(output.dropLast(spaces)) + ")" + String(repeating: " ", count: spaces)
                openNots.removeLast()
            }
        }
        var index = condition.startIndex
        while index < condition.endIndex {
            let character = condition[index]
            let next = condition.index(after: index)
            if character == "\"" {
                let end = try stringEnd(in: condition, from: index)
                output += condition[index..<end]
                index = end
            } else if character == "`" {
                guard let close = condition[next...].firstIndex(of: "`") else {
                    throw Failure(reason: "a raw string is not closed")
                }
                let content = condition[next..<close]
                // A raw string keeps its backslashes: r"..." does too.
                guard !content.contains("\"") else {
                    throw Failure(reason: "a raw string that holds a double quote")
                }
                output += "r\"\(content)\""
                index = condition.index(after: close)
            } else if character.isLetter || character == "_" {
                let end =
                    condition[index...].firstIndex { !($0.isLetter || $0.isNumber || $0 == "_") }
                    ?? condition.endIndex
                let word = String(condition[index..<end])
                index = end
                switch word {
                case "and", "or":
                    closeNots(atOrAbove: depth)
                    output += word == "and" ? "&&" : "||"
                case "not":
                    output += "!("
                    openNots.append(depth)
                    while index < condition.endIndex, condition[index] == " " { index = condition.index(after: index) }
                case "_":
                    throw Failure(reason: "iteration with `_` (use exists() in the expression)")
                case "some", "every", "import", "package", "default", "with", "else":
                    throw Failure(reason: "the Rego keyword `\(word)`")
                default:
                    output += word
                }
            } else if ":{}".contains(character) || (character == "|" && !isDouble(condition, index)) {
                throw Failure(reason: "Rego assignments, sets and comprehensions (`\(character)`)")
            } else if character == "=" && !isComparison(condition, index) {
                throw Failure(reason: "Rego unification with a single `=`; use `==`")
            } else if (character == "&" || character == "|") && next < condition.endIndex
                && condition[next] == character
            {
                closeNots(atOrAbove: depth)
                output += "\(character)\(character)"
                index = condition.index(after: next)
            } else {
                if character == "(" || character == "[" { depth += 1 }
                if character == ")" || character == "]" {
                    closeNots(atOrAbove: depth)
                    depth -= 1
                }
                output.append(character)
                index = next
            }
        }
        closeNots(atOrAbove: 0)
        return output
    }

    private static func stringEnd(in text: String, from start: String.Index) throws(Failure) -> String.Index {
        var index = text.index(after: start)
        var escaped = false
        while index < text.endIndex {
            let character = text[index]
            index = text.index(after: index)
            if escaped {
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                return index
            }
        }
        throw Failure(reason: "a string is not closed")
    }

    /// Whether the `|` at `index` is half of `||`.
    private static func isDouble(_ text: String, _ index: String.Index) -> Bool {
        let next = text.index(after: index)
        let previous = index > text.startIndex ? text[text.index(before: index)] : " "
        return (next < text.endIndex && text[next] == "|") || previous == "|"
    }

    /// Whether the `=` at `index` belongs to `==`, `!=`, `<=` or `>=`.
    private static func isComparison(_ text: String, _ index: String.Index) -> Bool {
        let next = text.index(after: index)
        let previous = index > text.startIndex ? text[text.index(before: index)] : " "
        return (next < text.endIndex && text[next] == "=") || "=!<>".contains(previous)
    }
}
