/// The operator's `--run-command` string split into an argv, as a shell would split words, with no shell.
///
/// Rules: blanks (space, tab, newline) separate words; `'…'` keeps everything literally; `"…"` keeps everything
/// except that `\"` and `\\` stand for `"` and `\`; outside quotes, `\` keeps the next character literally.
/// Nothing is expanded: no variables, globs, `~`, pipes or redirections; they are ordinary characters. The first
/// word must be an absolute path, because no `PATH` lookup happens either.
///
/// Wiring: `steady agent --run-command` parses it once at start, and ``RunExecutor`` runs the words for every
/// request without a `command` and for every scheduled run.
public enum RunCommandLine {
    /// The words of `text`.
    ///
    /// - Throws: ``AgentError`` (``AgentError/Code/invalidConfiguration``) for an unterminated quote, a trailing
    ///   backslash, no words, or a first word that is not an absolute path.
    public static func split(_ text: String) throws(AgentError) -> [String] {
        func invalid(_ problem: String) -> AgentError {
            AgentError(code: .invalidConfiguration, message: "--run-command \(problem)")
        }
        var words: [String] = []
        var word = ""
        var isInWord = false
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            switch character {
            case " ", "\t", "\n":
                if isInWord { words.append(word) }
                word = ""
                isInWord = false
            case "'":
                isInWord = true
                var isClosed = false
                while let inner = iterator.next() {
                    if inner == "'" {
                        isClosed = true
                        break
                    }
                    word.append(inner)
                }
                guard isClosed else { throw invalid("has an unterminated single quote") }
            case "\"":
                isInWord = true
                var isClosed = false
                while let inner = iterator.next() {
                    if inner == "\"" {
                        isClosed = true
                        break
                    }
                    if inner == "\\" {
                        guard let escaped = iterator.next() else { break }
                        if escaped != "\"" && escaped != "\\" { word.append("\\") }
                        word.append(escaped)
                    } else {
                        word.append(inner)
                    }
                }
                guard isClosed else { throw invalid("has an unterminated double quote") }
            case "\\":
                guard let escaped = iterator.next() else { throw invalid("ends with a backslash") }
                isInWord = true
                word.append(escaped)
            default:
                isInWord = true
                word.append(character)
            }
        }
        if isInWord { words.append(word) }
        guard let program = words.first else {
            throw invalid("is empty: give the program to run, like /usr/bin/rudder agent run")
        }
        guard program.hasPrefix("/") else {
            throw invalid("must start with an absolute path (no PATH lookup happens): \"\(program)\" is not one")
        }
        return words
    }
}
