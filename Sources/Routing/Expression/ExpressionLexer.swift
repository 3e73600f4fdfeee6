/// Splits source text into tokens, following CEL's lexical rules (comments, quotes, raw strings, escapes).
struct ExpressionLexer {
    private let scalars: [Unicode.Scalar]
    private let source: String
    private var position = 0

    init(source: String) {
        self.source = source
        self.scalars = Array(source.unicodeScalars)
    }

    /// All tokens, ending with `.end`.
    mutating func tokenize() throws(ExpressionError) -> [ExpressionToken] {
        var tokens: [ExpressionToken] = []
        while true {
            let token = try next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        let index = position + ahead
        return index < scalars.count ? scalars[index] : nil
    }

    private func error(_ message: String, at offset: Int) -> ExpressionError {
        ExpressionError(code: .syntax, message: message, offset: offset, in: source)
    }

    private mutating func skipWhitespaceAndComments() {
        while let scalar = peek() {
            switch scalar {
            case " ", "\t", "\n", "\r", "\u{0C}":
                position += 1
            case "/" where peek(1) == "/":
                while let next = peek(), next != "\n" { position += 1 }
            default:
                return
            }
        }
    }

    private mutating func next() throws(ExpressionError) -> ExpressionToken {
        skipWhitespaceAndComments()
        let start = position
        guard let scalar = peek() else { return ExpressionToken(kind: .end, offset: start, length: 0) }

        if scalar.isIdentifierStart {
            return try identifierOrPrefixedString(start: start)
        }
        if scalar.isDigit || (scalar == "." && peek(1)?.isDigit == true) {
            return try number(start: start)
        }
        if scalar == "\"" || scalar == "'" {
            let text = try string(start: start, raw: false)
            return ExpressionToken(kind: .string(text), offset: start, length: position - start)
        }
        return try symbol(start: start, scalar: scalar)
    }

    private mutating func symbol(start: Int, scalar: Unicode.Scalar) throws(ExpressionError) -> ExpressionToken {
        let next = peek(1)
        let symbol: ExpressionToken.Symbol
        var length = 1
        switch scalar {
        case "(": symbol = .leftParen
        case ")": symbol = .rightParen
        case "[": symbol = .leftBracket
        case "]": symbol = .rightBracket
        case "{": symbol = .leftBrace
        case "}": symbol = .rightBrace
        case ".": symbol = .dot
        case ",": symbol = .comma
        case "?": symbol = .question
        case ":": symbol = .colon
        case "+": symbol = .plus
        case "-": symbol = .minus
        case "*": symbol = .star
        case "/": symbol = .slash
        case "%": symbol = .percent
        case "!":
            if next == "=" {
                symbol = .notEqual
                length = 2
            } else {
                symbol = .not
            }
        case "<":
            if next == "=" {
                symbol = .lessOrEqual
                length = 2
            } else {
                symbol = .less
            }
        case ">":
            if next == "=" {
                symbol = .greaterOrEqual
                length = 2
            } else {
                symbol = .greater
            }
        case "=":
            guard next == "=" else { throw error("unexpected '='; did you mean '=='?", at: start) }
            symbol = .equal
            length = 2
        case "&":
            guard next == "&" else { throw error("unexpected '&'; did you mean '&&'?", at: start) }
            symbol = .and
            length = 2
        case "|":
            guard next == "|" else { throw error("unexpected '|'; did you mean '||'?", at: start) }
            symbol = .or
            length = 2
        default:
            throw error("unexpected character '\(scalar.escaped(asASCII: false))'", at: start)
        }
        position += length
        return ExpressionToken(kind: .symbol(symbol), offset: start, length: length)
    }

    private mutating func identifierOrPrefixedString(start: Int) throws(ExpressionError) -> ExpressionToken {
        while let scalar = peek(), scalar.isIdentifierContinue { position += 1 }
        var word = ""
        word.unicodeScalars.append(contentsOf: scalars[start..<position])

        // A one- or two-letter prefix glued to a quote makes a raw (r) or bytes (b) string literal.
        if let quote = peek(), quote == "\"" || quote == "'" {
            let lower = word.lowercased()
            if lower == "r" {
                let text = try string(start: start, raw: true)
                return ExpressionToken(kind: .string(text), offset: start, length: position - start)
            }
            if lower == "b" || lower == "rb" || lower == "br" {
                throw error("bytes literals are not supported", at: start)
            }
        }

        let kind: ExpressionToken.Kind
        switch word {
        case "true": kind = .boolean(true)
        case "false": kind = .boolean(false)
        case "null": kind = .null
        case "in": kind = .symbol(.in)
        default: kind = .identifier(word)
        }
        return ExpressionToken(kind: kind, offset: start, length: position - start)
    }

    private mutating func number(start: Int) throws(ExpressionError) -> ExpressionToken {
        // Hexadecimal integers: 0x1F, optionally with an unsigned suffix.
        if peek() == "0", let x = peek(1), x == "x" || x == "X" {
            position += 2
            let digitsStart = position
            while let scalar = peek(), scalar.isHexDigit { position += 1 }
            guard position > digitsStart else { throw error("expected hexadecimal digits after '0x'", at: start) }
            let digits = text(digitsStart, position)
            guard let value = UInt64(digits, radix: 16) else {
                throw error("integer literal \(text(start, position)) is out of range", at: start)
            }
            skipUnsignedSuffix()
            return try finishNumber(.integer(value), start: start)
        }

        var isDouble = false
        while let scalar = peek(), scalar.isDigit { position += 1 }
        if peek() == ".", peek(1)?.isDigit == true {
            isDouble = true
            position += 1
            while let scalar = peek(), scalar.isDigit { position += 1 }
        }
        if let e = peek(), e == "e" || e == "E" {
            var ahead = 1
            if let sign = peek(1), sign == "+" || sign == "-" { ahead = 2 }
            if peek(ahead)?.isDigit == true {
                isDouble = true
                position += ahead
                while let scalar = peek(), scalar.isDigit { position += 1 }
            } else {
                throw error("expected digits in the exponent of a number", at: start)
            }
        }
        let literal = text(start, position)
        if isDouble {
            guard let value = Double(literal), value.isFinite else {
                throw error("number \(literal) is out of range", at: start)
            }
            return try finishNumber(.double(value), start: start)
        }
        guard let value = UInt64(literal) else { throw error("integer literal \(literal) is out of range", at: start) }
        skipUnsignedSuffix()
        return try finishNumber(.integer(value), start: start)
    }

    /// CEL's `u` suffix marks an unsigned integer; JSON has one integer type, so it is accepted and ignored.
    private mutating func skipUnsignedSuffix() {
        if let u = peek(), u == "u" || u == "U" { position += 1 }
    }

    /// Rejects a number glued to letters, such as `12abc`, which would otherwise lex as two tokens.
    private func finishNumber(_ kind: ExpressionToken.Kind, start: Int) throws(ExpressionError) -> ExpressionToken {
        if let scalar = peek(), scalar.isIdentifierContinue {
            throw error("unexpected character '\(scalar)' after number", at: position)
        }
        return ExpressionToken(kind: kind, offset: start, length: position - start)
    }

    private func text(_ from: Int, _ to: Int) -> String {
        var result = ""
        result.unicodeScalars.append(contentsOf: scalars[from..<to])
        return result
    }

    /// Reads a quoted string starting at the quote (after any prefix); `start` is where the token began.
    private mutating func string(start: Int, raw: Bool) throws(ExpressionError) -> String {
        guard let quote = peek() else { throw error("unterminated string literal", at: start) }
        let triple = peek(1) == quote && peek(2) == quote
        position += triple ? 3 : 1
        var result = ""
        while true {
            guard let scalar = peek() else { throw error("unterminated string literal", at: start) }
            if scalar == quote {
                if !triple {
                    position += 1
                    return result
                }
                if peek(1) == quote && peek(2) == quote {
                    position += 3
                    return result
                }
            }
            if !triple && (scalar == "\n" || scalar == "\r") {
                throw error("unterminated string literal", at: start)
            }
            if scalar == "\\" && !raw {
                result.unicodeScalars.append(try escape())
            } else {
                result.unicodeScalars.append(scalar)
                position += 1
            }
        }
    }

    private mutating func escape() throws(ExpressionError) -> Unicode.Scalar {
        let start = position
        position += 1
        guard let scalar = peek() else { throw error("unterminated string literal", at: start) }
        position += 1
        switch scalar {
        case "a": return "\u{07}"
        case "b": return "\u{08}"
        case "f": return "\u{0C}"
        case "n": return "\n"
        case "r": return "\r"
        case "t": return "\t"
        case "v": return "\u{0B}"
        case "\\", "'", "\"", "`", "?": return scalar
        case "x", "X": return try hexEscape(digits: 2, start: start)
        case "u": return try hexEscape(digits: 4, start: start)
        case "U": return try hexEscape(digits: 8, start: start)
        case "0"..."3":
            guard let second = peek(), let third = peek(1), second.isOctalDigit, third.isOctalDigit,
                let value = UInt32(text(position - 1, position + 2), radix: 8), let result = Unicode.Scalar(value)
            else { throw error("invalid octal escape sequence", at: start) }
            position += 2
            return result
        default:
            throw error("invalid escape sequence '\\\(scalar.escaped(asASCII: false))'", at: start)
        }
    }

    private mutating func hexEscape(digits: Int, start: Int) throws(ExpressionError) -> Unicode.Scalar {
        let from = position
        for _ in 0..<digits {
            guard let scalar = peek(), scalar.isHexDigit else {
                throw error("invalid escape sequence: expected \(digits) hexadecimal digits", at: start)
            }
            position += 1
        }
        guard let value = UInt32(text(from, position), radix: 16), let scalar = Unicode.Scalar(value) else {
            throw error("invalid escape sequence: not a Unicode scalar value", at: start)
        }
        return scalar
    }
}

extension Unicode.Scalar {
    fileprivate var isDigit: Bool { ("0"..."9").contains(self) }
    fileprivate var isOctalDigit: Bool { ("0"..."7").contains(self) }
    fileprivate var isHexDigit: Bool { isDigit || ("a"..."f").contains(self) || ("A"..."F").contains(self) }
    fileprivate var isIdentifierStart: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) || self == "_" }
    fileprivate var isIdentifierContinue: Bool { isIdentifierStart || isDigit }
}
