/// Measures how deeply a mustache source nests, without recursion, by finding tags exactly as swift-mustache's
/// parser (2.1) does.
///
/// The scan follows set-delimiter tags (`{{=<% %>=}}`) and skips comments the way the parser does, so changing
/// delimiters cannot hide a section from it. As in swift-mustache, delimiters set inside a section hold until the
/// section ends; the enclosing section's are then in force again. Wherever the parser would fail on a tag the scan
/// stops: the parser never gets deeper than the depth reached up to that point. Every reading here mirrors one in
/// `Template+Parser.swift`, and `MustacheTagScannerTests` compares the two on thousands of generated templates;
/// keep them in step when swift-mustache is upgraded.
struct MustacheTagScanner {
    /// The deepest section nesting reached, and where.
    private(set) var maxDepth = 0
    /// The most transforms (`f(g(x))`) in one tag name.
    private(set) var maxTransforms = 0
    /// The first start delimiter of one character that a set-delimiter tag chose, if any. swift-mustache finds the
    /// text of a section by stepping two characters back from the `/` of its closing tag, so with a one-character
    /// delimiter a section closed right where it opens makes it form a reversed range and trap: it must not see one.
    private(set) var oneCharacterDelimiter: String?

    private let text: [Character]
    private var position = 0
    private var startDelimiter: [Character] = ["{", "{"]
    private var endDelimiter: [Character] = ["}", "}"]
    /// The delimiters in force where each open section began, innermost last: its depth is the count.
    private var enclosingDelimiters: [(start: [Character], end: [Character])] = []

    private static let nameCharacters = Set<Character>(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-_?()*")
    private static let configurationCharacters = Set<Character>(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-_?*")
    private static let partialNameCharacters = Set<Character>(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-_?()*/")

    /// Scans `source` to its end, or to the first tag the parser would reject.
    init(_ source: String) {
        text = Array(source)
        while nextTag(), readTag() {}
    }

    // MARK: - Tags

    /// Moves past the next start delimiter; false when there is none (the rest is text) or the source ends there.
    ///
    /// The parser tries the whole delimiter at each occurrence of its first character and moves on by one
    /// character when it does not match: the leftmost occurrence wins.
    private mutating func nextTag() -> Bool {
        guard let first = startDelimiter.first else { return false }
        while position < text.count {
            if text[position] == first && matches(startDelimiter, at: position) {
                position += startDelimiter.count
                guard position < text.count else { return false }
                // A delimiter followed by a line break is no tag: the parser reads the break as text and goes on.
                if text[position].isNewline {
                    position += 1
                    continue
                }
                return true
            }
            position += 1
        }
        return false
    }

    /// Reads one tag after its start delimiter; false where the parser would throw.
    private mutating func readTag() -> Bool {
        switch text[position] {
        case "#", "^", "$":
            position += 1
            guard readName() else { return false }
            enterSection()
        case "<":
            position += 1
            skipWhitespace()
            guard readPartialName() else { return false }
            enterSection()
        case "/":
            position += 1
            // The parser throws on a close with no open section.
            guard readName(), let enclosing = enclosingDelimiters.popLast() else { return false }
            (startDelimiter, endDelimiter) = enclosing
        case "!":
            position += 1
            return skipComment()
        case "{":
            position += 1
            guard readName(), position < text.count, text[position] == "}" else { return false }
            position += 1
        case "&":
            position += 1
            return readName()
        case ">":
            position += 1
            skipWhitespace()
            if position < text.count, text[position] == "*" { position += 1 }
            return readPartialName()
        case "=":
            position += 1
            return readDelimiters()
        case "%":
            position += 1
            return readConfigurationVariable()
        default:
            return readName()
        }
        return true
    }

    private mutating func enterSection() {
        enclosingDelimiters.append((startDelimiter, endDelimiter))
        maxDepth = max(maxDepth, enclosingDelimiters.count)
    }

    /// `parseName`: a padded name, then the end delimiter. A name's parentheses are transforms, which the parser
    /// reads by recursing once per `(`.
    private mutating func readName() -> Bool {
        let begin = position
        skipPadded(Self.nameCharacters)
        maxTransforms = max(maxTransforms, text[begin..<position].filter { $0 == "(" }.count)
        return readEndDelimiter()
    }

    /// `parsePartialName`.
    private mutating func readPartialName() -> Bool {
        skipPadded(Self.partialNameCharacters)
        return readEndDelimiter()
    }

    /// `readConfigVariable`: `{{% NAME: value }}`.
    private mutating func readConfigurationVariable() -> Bool {
        skipPadded(Self.configurationCharacters)
        guard position < text.count, text[position] == ":" else { return false }
        position += 1
        skipPadded(Self.configurationCharacters)
        return readEndDelimiter()
    }

    /// `parserSetDelimiter`: `{{=start end=}}`, where start is anything but whitespace and end has no `=` either.
    private mutating func readDelimiters() -> Bool {
        skipWhitespace()
        let startBegin = position
        skip { !$0.isWhitespace }
        guard position < text.count else { return false }
        let start = Array(text[startBegin..<position])
        skipWhitespace()
        let endBegin = position
        skip { $0 != "=" && !$0.isWhitespace }
        guard position < text.count else { return false }
        let end = Array(text[endBegin..<position])
        skipWhitespace()
        guard position < text.count, text[position] == "=" else { return false }
        position += 1
        guard readEndDelimiter(), !start.isEmpty, !end.isEmpty else { return false }
        startDelimiter = start
        endDelimiter = end
        if start.count < 2 && oneCharacterDelimiter == nil { oneCharacterDelimiter = String(start) }
        return true
    }

    /// `parseComment`: up to and past the end delimiter, found as the parser finds it. After a partial match the
    /// parser does not look at the mismatching character again, so `%%>` does not end a comment whose end
    /// delimiter is `%>`; this does the same, so both agree on where the comment ends.
    private mutating func skipComment() -> Bool {
        var matched = 0
        while position < text.count {
            if text[position] == endDelimiter[matched] {
                matched += 1
                if matched == endDelimiter.count {
                    position += 1
                    return true
                }
            } else {
                matched = 0
            }
            position += 1
        }
        return false
    }

    // MARK: - Characters

    private func matches(_ delimiter: [Character], at index: Int) -> Bool {
        guard text.count - index >= delimiter.count else { return false }
        return text[index..<(index + delimiter.count)].elementsEqual(delimiter)
    }

    private mutating func readEndDelimiter() -> Bool {
        guard matches(endDelimiter, at: position) else { return false }
        position += endDelimiter.count
        return true
    }

    /// Whitespace, characters of `characters`, whitespace: how the parser reads a name inside a tag.
    private mutating func skipPadded(_ characters: Set<Character>) {
        skipWhitespace()
        skip(while: characters.contains)
        skipWhitespace()
    }

    private mutating func skipWhitespace() {
        skip(while: \.isWhitespace)
    }

    private mutating func skip(while predicate: (Character) -> Bool) {
        while position < text.count, predicate(text[position]) { position += 1 }
    }
}
