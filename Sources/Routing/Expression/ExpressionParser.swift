import Resources

/// Recursive-descent parser for the CEL grammar, producing ``ExpressionSyntax`` and enforcing the size limits.
///
/// Precedence, loosest first: `? :`, `||`, `&&`, relations (`== != < <= > >= in`), `+ -`, `* / %`, unary `! -`,
/// then member access, indexing and calls.
struct ExpressionParser {
    /// Words CEL reserves; rejecting them as names keeps expressions portable to other CEL engines.
    /// They remain valid as field names after a dot, where JSON keys like `namespace` need them.
    private static let reservedWords: Set<String> = [
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
        "package", "namespace", "return", "var", "void", "while",
    ]

    private let source: String
    private let scalars: [Unicode.Scalar]
    private let tokens: [ExpressionToken]
    private let limits: Expression.Limits
    private var index = 0
    private var nodeCount = 0
    /// How many sub-expressions enclose the current one; bounds recursion on inputs like `((((((x))))))`.
    private var nesting = 0

    init(source: String, tokens: [ExpressionToken], limits: Expression.Limits) {
        self.source = source
        self.scalars = Array(source.unicodeScalars)
        self.tokens = tokens
        self.limits = limits
    }

    /// Parses the whole token stream as one expression.
    mutating func parse() throws(ExpressionError) -> ExpressionSyntax {
        let expression = try parseExpression()
        guard current.kind == .end else { throw unexpected(expected: "end of expression") }
        return expression
    }

    // MARK: - Tokens

    private var current: ExpressionToken { tokens[min(index, tokens.count - 1)] }

    private func peekKind(_ ahead: Int) -> ExpressionToken.Kind {
        tokens[min(index + ahead, tokens.count - 1)].kind
    }

    private mutating func advance() -> ExpressionToken {
        let token = current
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func isSymbol(_ symbol: ExpressionToken.Symbol) -> Bool {
        current.kind == .symbol(symbol)
    }

    private mutating func consume(_ symbol: ExpressionToken.Symbol) -> Bool {
        guard isSymbol(symbol) else { return false }
        _ = advance()
        return true
    }

    private mutating func expect(_ symbol: ExpressionToken.Symbol) throws(ExpressionError) -> ExpressionToken {
        guard isSymbol(symbol) else { throw unexpected(expected: "'\(symbol.rawValue)'") }
        return advance()
    }

    /// `expected ')' but found ','`, pointing at the token that was found.
    private func unexpected(expected: String) -> ExpressionError {
        error(.syntax, "expected \(expected) but found \(describe(current))", at: current.offset)
    }

    private func describe(_ token: ExpressionToken) -> String {
        if token.kind == .end { return "end of expression" }
        let limit = 20
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars[token.offset..<(token.offset + min(token.length, limit))])
        return token.length > limit ? "'\(text)…'" : "'\(text)'"
    }

    private func error(_ code: ExpressionError.Code, _ message: String, at offset: Int) -> ExpressionError {
        ExpressionError(code: code, message: message, offset: offset, in: source)
    }

    // MARK: - Nodes

    /// Builds a node, counting it and checking the depth of the tree it tops.
    private mutating func make(
        _ kind: ExpressionSyntax.Kind, at offset: Int, children: [ExpressionSyntax] = []
    ) throws(ExpressionError) -> ExpressionSyntax {
        nodeCount += 1
        if nodeCount > limits.maxNodes {
            throw error(.tooComplex, "expression has more than \(limits.maxNodes) nodes", at: offset)
        }
        let depth = 1 + children.reduce(0) { max($0, $1.depth) }
        if depth > limits.maxDepth {
            throw error(.tooComplex, "expression nests more than \(limits.maxDepth) levels deep", at: offset)
        }
        return ExpressionSyntax(kind: kind, offset: offset, depth: depth)
    }

    // MARK: - Grammar

    private mutating func parseExpression() throws(ExpressionError) -> ExpressionSyntax {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > limits.maxDepth {
            throw error(.tooComplex, "expression nests more than \(limits.maxDepth) levels deep", at: current.offset)
        }
        let condition = try parseOr()
        guard isSymbol(.question) else { return condition }
        let question = advance()
        let then = try parseOr()
        _ = try expect(.colon)
        let otherwise = try parseExpression()
        return try make(
            .conditional(condition, then, otherwise), at: question.offset, children: [condition, then, otherwise])
    }

    private mutating func parseOr() throws(ExpressionError) -> ExpressionSyntax {
        var operands = [try parseAnd()]
        var operators: [Int] = []
        while isSymbol(.or) {
            operators.append(advance().offset)
            operands.append(try parseAnd())
        }
        return try balance(operands, operators, isAnd: false)
    }

    private mutating func parseAnd() throws(ExpressionError) -> ExpressionSyntax {
        var operands = [try parseRelation()]
        var operators: [Int] = []
        while isSymbol(.and) {
            operators.append(advance().offset)
            operands.append(try parseRelation())
        }
        return try balance(operands, operators, isAnd: true)
    }

    /// Builds a chain of `&&` or `||` as a balanced tree, as cel-go does, so that a long list of alternatives
    /// stays shallow; with error-absorbing, commutative semantics the grouping does not change the result.
    private mutating func balance(
        _ operands: [ExpressionSyntax], _ operators: [Int], isAnd: Bool
    ) throws(ExpressionError) -> ExpressionSyntax {
        try balance(operands, operators, isAnd: isAnd, from: 0, to: operands.count - 1)
    }

    private mutating func balance(
        _ operands: [ExpressionSyntax], _ operators: [Int], isAnd: Bool, from: Int, to: Int
    ) throws(ExpressionError) -> ExpressionSyntax {
        if from == to { return operands[from] }
        let middle = (from + to + 1) / 2
        let left = try balance(operands, operators, isAnd: isAnd, from: from, to: middle - 1)
        let right = try balance(operands, operators, isAnd: isAnd, from: middle, to: to)
        let kind: ExpressionSyntax.Kind = isAnd ? .and(left, right) : .or(left, right)
        return try make(kind, at: operators[middle - 1], children: [left, right])
    }

    private mutating func parseRelation() throws(ExpressionError) -> ExpressionSyntax {
        var left = try parseAddition()
        while case .symbol(let symbol) = current.kind {
            let op: ExpressionBinaryOperator
            switch symbol {
            case .equal: op = .equal
            case .notEqual: op = .notEqual
            case .less: op = .less
            case .lessOrEqual: op = .lessOrEqual
            case .greater: op = .greater
            case .greaterOrEqual: op = .greaterOrEqual
            case .in: op = .in
            default: return left
            }
            let token = advance()
            let right = try parseAddition()
            left = try make(.binary(op, left, right), at: token.offset, children: [left, right])
        }
        return left
    }

    private mutating func parseAddition() throws(ExpressionError) -> ExpressionSyntax {
        var left = try parseMultiplication()
        while isSymbol(.plus) || isSymbol(.minus) {
            let token = advance()
            let right = try parseMultiplication()
            let op: ExpressionBinaryOperator = token.kind == .symbol(.plus) ? .add : .subtract
            left = try make(.binary(op, left, right), at: token.offset, children: [left, right])
        }
        return left
    }

    private mutating func parseMultiplication() throws(ExpressionError) -> ExpressionSyntax {
        var left = try parseUnary()
        while true {
            let op: ExpressionBinaryOperator
            if isSymbol(.star) {
                op = .multiply
            } else if isSymbol(.slash) {
                op = .divide
            } else if isSymbol(.percent) {
                op = .remainder
            } else {
                return left
            }
            let token = advance()
            let right = try parseUnary()
            left = try make(.binary(op, left, right), at: token.offset, children: [left, right])
        }
    }

    private mutating func parseUnary() throws(ExpressionError) -> ExpressionSyntax {
        // Collect prefix operators iteratively so `!!!!…x` cannot recurse deeply before the depth check sees it.
        var operators: [(ExpressionUnaryOperator, Int)] = []
        while isSymbol(.not) || isSymbol(.minus) {
            let token = advance()
            operators.append((token.kind == .symbol(.not) ? .not : .negate, token.offset))
        }
        var operand: ExpressionSyntax
        if let last = operators.last, last.0 == .negate, case .integer(let magnitude) = current.kind,
            !isMemberSuffix(peekKind(1))
        {
            // Fold the minus into the literal so that -9223372036854775808 is representable.
            _ = advance()
            guard magnitude <= UInt64(Int64.max) + 1 else {
                throw error(.syntax, "integer literal -\(magnitude) is out of range", at: last.1)
            }
            let value = magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
            operators.removeLast()
            operand = try make(.literal(.int(value)), at: last.1)
        } else {
            operand = try parseMember()
        }
        for (op, offset) in operators.reversed() {
            operand = try make(.unary(op, operand), at: offset, children: [operand])
        }
        return operand
    }

    /// The name after a dot; JSON keys such as `namespace`, `in` or `null` are valid there.
    private func fieldName(_ kind: ExpressionToken.Kind) -> String? {
        switch kind {
        case .identifier(let name): name
        case .symbol(.in): "in"
        case .boolean(let flag): flag ? "true" : "false"
        case .null: "null"
        default: nil
        }
    }

    private func isMemberSuffix(_ kind: ExpressionToken.Kind) -> Bool {
        kind == .symbol(.dot) || kind == .symbol(.leftBracket)
    }

    private mutating func parseMember() throws(ExpressionError) -> ExpressionSyntax {
        var base = try parsePrimary()
        while true {
            if isSymbol(.dot) {
                _ = advance()
                guard let name = fieldName(current.kind) else {
                    throw unexpected(expected: "a field or function name after '.'")
                }
                let nameToken = advance()
                if isSymbol(.leftParen) {
                    let arguments = try parseArguments()
                    base = try make(
                        .call(function: name, nameOffset: nameToken.offset, receiver: base, arguments: arguments),
                        at: nameToken.offset, children: [base] + arguments)
                } else {
                    base = try make(.select(base, field: name), at: nameToken.offset, children: [base])
                }
            } else if isSymbol(.leftBracket) {
                let bracket = advance()
                let subscriptExpression = try parseExpression()
                _ = try expect(.rightBracket)
                base = try make(
                    .index(base, subscriptExpression), at: bracket.offset, children: [base, subscriptExpression])
            } else {
                return base
            }
        }
    }

    /// `( [expr {, expr}] )`, starting at the opening parenthesis.
    private mutating func parseArguments() throws(ExpressionError) -> [ExpressionSyntax] {
        _ = try expect(.leftParen)
        var arguments: [ExpressionSyntax] = []
        if consume(.rightParen) { return arguments }
        while true {
            arguments.append(try parseExpression())
            if consume(.comma) { continue }
            _ = try expect(.rightParen)
            return arguments
        }
    }

    private mutating func parsePrimary() throws(ExpressionError) -> ExpressionSyntax {
        let token = current
        switch token.kind {
        case .identifier(let name):
            if Self.reservedWords.contains(name) {
                throw error(.syntax, "'\(name)' is a reserved word", at: token.offset)
            }
            _ = advance()
            if isSymbol(.leftParen) {
                let arguments = try parseArguments()
                return try make(
                    .call(function: name, nameOffset: token.offset, receiver: nil, arguments: arguments),
                    at: token.offset, children: arguments)
            }
            return try make(.identifier(name), at: token.offset)
        case .integer(let magnitude):
            _ = advance()
            guard magnitude <= UInt64(Int64.max) else {
                throw error(.syntax, "integer literal \(magnitude) is out of range", at: token.offset)
            }
            return try make(.literal(.int(Int64(magnitude))), at: token.offset)
        case .double(let value):
            _ = advance()
            return try make(.literal(.double(value)), at: token.offset)
        case .string(let text):
            _ = advance()
            return try make(.literal(.string(text)), at: token.offset)
        case .boolean(let flag):
            _ = advance()
            return try make(.literal(.bool(flag)), at: token.offset)
        case .null:
            _ = advance()
            return try make(.literal(.null), at: token.offset)
        case .symbol(.leftParen):
            _ = advance()
            let inner = try parseExpression()
            _ = try expect(.rightParen)
            return inner
        case .symbol(.leftBracket):
            _ = advance()
            var elements: [ExpressionSyntax] = []
            while !isSymbol(.rightBracket) {
                elements.append(try parseExpression())
                if !consume(.comma) { break }
            }
            _ = try expect(.rightBracket)
            return try make(.list(elements), at: token.offset, children: elements)
        case .symbol(.leftBrace):
            _ = advance()
            var entries: [(key: ExpressionSyntax, value: ExpressionSyntax)] = []
            while !isSymbol(.rightBrace) {
                let key = try parseExpression()
                _ = try expect(.colon)
                let value = try parseExpression()
                entries.append((key, value))
                if !consume(.comma) { break }
            }
            _ = try expect(.rightBrace)
            return try make(.map(entries), at: token.offset, children: entries.flatMap { [$0.key, $0.value] })
        default:
            throw unexpected(expected: "an expression")
        }
    }
}
