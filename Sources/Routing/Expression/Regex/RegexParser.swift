/// Parses the RE2 syntax that CEL's `matches` is specified with, into a ``RegexNode`` tree.
///
/// Supported: literals and escapes (`\.`, `\n`, `\x41`, `\x{263A}`, `\Q…\E`), `.`, classes (`[a-z]`, `[^…]`,
/// `[[:alpha:]]`, `\d \w \s \D \W \S`), anchors and assertions (`^ $ \A \z \b \B`), groups (`( )`, `(?: )`,
/// `(?P<name> )`, `(?<name> )`), flags (`(?i)`, `(?s)`, `(?m)`, `(?i: )`), alternation and the quantifiers
/// `* + ? {m} {m,} {m,n}` (counts up to ``maxRepetition``; lazy forms are accepted and, for a yes/no search, mean
/// the same). Backreferences and lookaround cannot be matched in linear time and are rejected, as RE2 rejects them.
///
/// Groups nest at most ``maxNesting`` deep, checked before the parser recurses into one.
struct RegexParser {
    /// Deepest group nesting accepted.
    static let maxNesting = 32
    /// Largest count in `{m,n}`, as in RE2.
    static let maxRepetition = 1000

    private struct Flags {
        var caseInsensitive = false
        var dotMatchesNewline = false
        var multiline = false
    }

    private let scalars: [Unicode.Scalar]
    private var position = 0
    private var depth = 0
    private var flags = Flags()

    init(_ pattern: String) {
        scalars = Array(pattern.unicodeScalars)
    }

    /// Parses the whole pattern.
    mutating func parse() throws(RegexError) -> RegexNode {
        let node = try parseAlternation()
        if position < scalars.count {
            throw RegexError("unexpected ')'", at: position)
        }
        return node
    }

    // MARK: - Scalars

    private func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        position + ahead < scalars.count ? scalars[position + ahead] : nil
    }

    private mutating func consume(_ scalar: Unicode.Scalar) -> Bool {
        guard peek() == scalar else { return false }
        position += 1
        return true
    }

    // MARK: - Structure

    private mutating func parseAlternation() throws(RegexError) -> RegexNode {
        var alternatives = [try parseConcatenation()]
        while consume("|") {
            alternatives.append(try parseConcatenation())
        }
        return alternatives.count == 1 ? alternatives[0] : .alternation(alternatives)
    }

    private mutating func parseConcatenation() throws(RegexError) -> RegexNode {
        var items: [RegexNode] = []
        while let scalar = peek(), scalar != "|", scalar != ")" {
            if scalar == "\\" && peek(1) == "Q" {
                // `\Q…\E` is literal text; a quantifier after it applies to its last scalar only.
                var literals = readQuotedText()
                guard let last = literals.popLast() else { continue }
                items += literals
                items.append(try parseQuantifier(of: last))
                continue
            }
            // A flags-only group such as `(?i)` yields no atom; it changes how the rest of the group is read.
            guard let atom = try parseAtom() else { continue }
            items.append(try parseQuantifier(of: atom))
        }
        switch items.count {
        case 0: return .empty
        case 1: return items[0]
        default: return .concatenation(items)
        }
    }

    private mutating func parseAtom() throws(RegexError) -> RegexNode? {
        let start = position
        guard let scalar = peek() else { return nil }
        switch scalar {
        case "(":
            return try parseGroup()
        case "[":
            return try parseClass()
        case ".":
            position += 1
            return .set(flags.dotMatchesNewline ? .all : .allButNewline)
        case "^":
            position += 1
            return .assertion(flags.multiline ? .startOfLine : .startOfText)
        case "$":
            position += 1
            return .assertion(flags.multiline ? .endOfLine : .endOfText)
        case "\\":
            return try parseEscape()
        case "*", "+", "?":
            throw RegexError("missing argument to repetition operator '\(scalar)'", at: start)
        case "{":
            if try repetitionBounds() != nil {
                throw RegexError("missing argument to repetition operator '{'", at: start)
            }
            position += 1
            return literal(scalar)
        default:
            position += 1
            return literal(scalar)
        }
    }

    private func literal(_ scalar: Unicode.Scalar) -> RegexNode {
        guard flags.caseInsensitive, !RegexCharacterSet.caseVariants(of: scalar).isEmpty else {
            return .scalar(scalar)
        }
        return .set(RegexCharacterSet([scalar.value...scalar.value], foldsCase: true))
    }

    private mutating func parseQuantifier(of atom: RegexNode) throws(RegexError) -> RegexNode {
        let start = position
        let minimum: Int
        let maximum: Int?
        switch peek() {
        case "*":
            (minimum, maximum) = (0, nil)
            position += 1
        case "+":
            (minimum, maximum) = (1, nil)
            position += 1
        case "?":
            (minimum, maximum) = (0, 1)
            position += 1
        case "{":
            guard let bounds = try repetitionBounds() else { return atom }
            (minimum, maximum) = bounds.counts
            position = bounds.end
        default:
            return atom
        }
        // `x*?` is lazy: it prefers fewer repetitions, which cannot change whether the text matches.
        _ = consume("?")
        let isQuantifier: Bool
        switch peek() {
        case "*", "+", "?": isQuantifier = true
        case "{": isQuantifier = try repetitionBounds() != nil
        default: isQuantifier = false
        }
        if isQuantifier {
            throw RegexError(
                "bad repetition operator '\(String(String.UnicodeScalarView(scalars[start...position])))'",
                at: start)
        }
        return .repetition(atom, minimum: minimum, maximum: maximum)
    }

    /// `{m}`, `{m,}` or `{m,n}` at the current position, without consuming it; nil when the brace does not start
    /// one (RE2 then reads `{` as a literal).
    private func repetitionBounds() throws(RegexError) -> (counts: (Int, Int?), end: Int)? {
        var index = position + 1
        func number() -> Int? {
            let begin = index
            var value = 0
            while index < scalars.count, let digit = Int(String(scalars[index])), scalars[index].isASCII {
                value = min(value * 10 + digit, Self.maxRepetition + 1)
                index += 1
            }
            return index > begin ? value : nil
        }
        guard let minimum = number() else { return nil }
        var maximum: Int? = minimum
        if index < scalars.count, scalars[index] == "," {
            index += 1
            maximum = number()
        }
        guard index < scalars.count, scalars[index] == "}" else { return nil }
        if minimum > Self.maxRepetition || (maximum ?? 0) > Self.maxRepetition {
            throw RegexError("repetition count above the limit of \(Self.maxRepetition)", at: position)
        }
        if let maximum, maximum < minimum {
            throw RegexError("invalid repetition range {\(minimum),\(maximum)}", at: position)
        }
        return ((minimum, maximum), index + 1)
    }

    // MARK: - Groups

    private mutating func parseGroup() throws(RegexError) -> RegexNode? {
        let start = position
        position += 1
        var groupFlags = flags
        if consume("?") {
            switch peek() {
            case ":":
                position += 1
            case "P":
                position += 1
                if peek() == "=" || peek() == ">" {
                    throw RegexError(
                        "backreferences and recursion are not supported: they cannot be matched in linear time",
                        at: start)
                }
                try parseGroupName(at: start)
            case "<":
                if peek(1) == "=" || peek(1) == "!" {
                    throw RegexError("lookbehind assertions are not supported", at: start)
                }
                try parseGroupName(at: start)
            case "=", "!":
                throw RegexError("lookahead assertions are not supported", at: start)
            case ">":
                throw RegexError("atomic groups are not supported", at: start)
            default:
                groupFlags = try parseFlags(at: start)
                if consume(")") {
                    // `(?i)`: the flags hold for the rest of the enclosing group.
                    flags = groupFlags
                    return nil
                }
                position += 1  // the ':' that parseFlags stopped at
            }
        }
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maxNesting {
            throw RegexError("groups nest more than \(Self.maxNesting) deep", at: start)
        }
        let enclosingFlags = flags
        flags = groupFlags
        let inner = try parseAlternation()
        flags = enclosingFlags
        guard consume(")") else {
            throw RegexError("missing ')' to close the group", at: start)
        }
        return inner
    }

    /// `<name>` after `(?P` or `(?`.
    private mutating func parseGroupName(at start: Int) throws(RegexError) {
        guard consume("<") else { throw RegexError("invalid named group", at: start) }
        let nameStart = position
        while let scalar = peek(), scalar == "_" || scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
            position += 1
        }
        guard position > nameStart, consume(">") else { throw RegexError("invalid named group", at: start) }
    }

    /// The flags of `(?flags)` or `(?flags:`, stopping before the `)` or at the `:`.
    private mutating func parseFlags(at start: Int) throws(RegexError) -> Flags {
        var result = flags
        var isNegated = false
        var sawFlag = false
        while let scalar = peek() {
            switch scalar {
            case "i": result.caseInsensitive = !isNegated
            case "s": result.dotMatchesNewline = !isNegated
            case "m": result.multiline = !isNegated
            case "U": break  // ungreedy: the same yes/no answer
            case "-":
                guard !isNegated else { throw RegexError("invalid group flags", at: start) }
                isNegated = true
                position += 1
                continue
            case ")", ":":
                guard sawFlag else { throw RegexError("invalid group flags", at: start) }
                return result
            default:
                throw RegexError("unknown group flag '\(scalar)'", at: position)
            }
            sawFlag = true
            position += 1
        }
        throw RegexError("missing ')' to close the group", at: start)
    }

    // MARK: - Classes and escapes

    private enum ClassItem {
        case scalar(Unicode.Scalar)
        case set(RegexCharacterSet)
    }

    private mutating func parseClass() throws(RegexError) -> RegexNode {
        let start = position
        position += 1
        var set = RegexCharacterSet()
        let isNegated = consume("^")
        var isFirst = true
        while true {
            guard let scalar = peek() else { throw RegexError("missing ']'", at: start) }
            if scalar == "]" && !isFirst {
                position += 1
                break
            }
            isFirst = false
            if scalar == "[", peek(1) == ":", let posix = try parsePOSIXClass() {
                set.formUnion(posix)
                continue
            }
            let itemStart = position
            switch try parseClassItem() {
            case .set(let items):
                set.formUnion(items)
            case .scalar(let low):
                guard peek() == "-", let after = peek(1), after != "]" else {
                    set.insert(low.value...low.value)
                    continue
                }
                position += 1
                guard case .scalar(let high) = try parseClassItem(), low <= high else {
                    throw RegexError("invalid character class range", at: itemStart)
                }
                set.insert(low.value...high.value)
            }
        }
        set.foldsCase = flags.caseInsensitive
        set.isNegated = isNegated
        return .set(set)
    }

    /// `[:alpha:]` or `[:^alpha:]` inside a class; nil when the text is not one (it is then read as literals).
    private mutating func parsePOSIXClass() throws(RegexError) -> RegexCharacterSet? {
        let start = position
        var index = position + 2
        var name = ""
        while index < scalars.count, scalars[index] != ":" {
            name.unicodeScalars.append(scalars[index])
            index += 1
        }
        guard index + 1 < scalars.count, scalars[index + 1] == "]" else { return nil }
        let isNegated = name.hasPrefix("^")
        guard let set = RegexCharacterSet.posixClasses[isNegated ? String(name.dropFirst()) : name] else {
            throw RegexError("unknown POSIX class [:\(name):]", at: start)
        }
        position = index + 2
        return isNegated ? set.complement() : set
    }

    private mutating func parseClassItem() throws(RegexError) -> ClassItem {
        guard let scalar = peek() else { throw RegexError("missing ']'", at: position) }
        guard scalar == "\\" else {
            position += 1
            return .scalar(scalar)
        }
        let start = position
        position += 1
        guard let escaped = peek() else { throw RegexError("trailing backslash", at: start) }
        position += 1
        if let set = Self.classEscape(escaped) { return .set(set) }
        return .scalar(try scalarEscape(escaped, at: start))
    }

    private mutating func parseEscape() throws(RegexError) -> RegexNode {
        let start = position
        position += 1
        guard let escaped = peek() else { throw RegexError("trailing backslash", at: start) }
        position += 1
        if let set = Self.classEscape(escaped) { return .set(set) }
        switch escaped {
        case "b": return .assertion(.wordBoundary)
        case "B": return .assertion(.notWordBoundary)
        case "A": return .assertion(.startOfText)
        case "z": return .assertion(.endOfText)
        default:
            return literal(try scalarEscape(escaped, at: start))
        }
    }

    /// The scalars of `\Q…\E` (or of `\Q…` to the end of the pattern), starting at the backslash.
    private mutating func readQuotedText() -> [RegexNode] {
        position += 2
        var items: [RegexNode] = []
        while let scalar = peek(), !(scalar == "\\" && peek(1) == "E") {
            items.append(literal(scalar))
            position += 1
        }
        if peek() != nil { position += 2 }
        return items
    }

    /// `\d \D \w \W \s \S`.
    private static func classEscape(_ scalar: Unicode.Scalar) -> RegexCharacterSet? {
        switch scalar {
        case "d": .digits
        case "D": RegexCharacterSet.digits.complement()
        case "w": .wordCharacters
        case "W": RegexCharacterSet.wordCharacters.complement()
        case "s": .whitespace
        case "S": RegexCharacterSet.whitespace.complement()
        default: nil
        }
    }

    /// An escape that stands for one scalar; `start` is the offset of the backslash.
    private mutating func scalarEscape(_ scalar: Unicode.Scalar, at start: Int) throws(RegexError) -> Unicode.Scalar {
        switch scalar {
        case "n": return "\n"
        case "t": return "\t"
        case "r": return "\r"
        case "f": return "\u{0C}"
        case "v": return "\u{0B}"
        case "a": return "\u{07}"
        case "0": return "\0"
        case "x": return try hexEscape(at: start)
        case "1"..."9", "k", "g":
            throw RegexError(
                "backreferences such as \\\(scalar) are not supported: they cannot be matched in linear time",
                at: start)
        case "p", "P":
            throw RegexError("Unicode character classes (\\p, \\P) are not supported", at: start)
        default:
            // Any escaped ASCII punctuation stands for itself: `\.`, `\*`, `\\`, `\/`, `\-`.
            guard scalar.isASCII, !scalar.properties.isAlphabetic, !("0"..."9").contains(scalar) else {
                throw RegexError("unknown escape \\\(scalar)", at: start)
            }
            return scalar
        }
    }

    /// `\xHH` or `\x{H…}`, after the `x`.
    private mutating func hexEscape(at start: Int) throws(RegexError) -> Unicode.Scalar {
        var digits = ""
        if consume("{") {
            while let scalar = peek(), scalar != "}", digits.count <= 8 {
                digits.unicodeScalars.append(scalar)
                position += 1
            }
            guard consume("}") else { throw RegexError("invalid \\x escape", at: start) }
        } else {
            for _ in 0..<2 {
                guard let scalar = peek() else { break }
                digits.unicodeScalars.append(scalar)
                position += 1
            }
        }
        guard !digits.isEmpty, digits.count <= 8, let value = UInt32(digits, radix: 16),
            let scalar = Unicode.Scalar(value)
        else {
            throw RegexError("invalid \\x escape", at: start)
        }
        return scalar
    }
}
