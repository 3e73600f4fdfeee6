import Resources

/// Turns ``ExpressionSyntax`` into an ``ExpressionNode``: resolves names, binds functions and macros,
/// rejects operations whose operand types can never work, compiles literal regular expressions,
/// and folds constant sub-expressions.
struct ExpressionCompiler {
    /// A value type the checker may know statically; `nil` (dynamic) stands for anything read from the input.
    enum ValueType: CaseIterable, Hashable {
        case null, bool, int, double, string, list, map

        init(of value: JSONValue) {
            switch value {
            case .null: self = .null
            case .bool: self = .bool
            case .int: self = .int
            case .double: self = .double
            case .string: self = .string
            case .array: self = .list
            case .object: self = .map
            }
        }

        /// A representative value, used to ask the runtime implementation whether an operation accepts the type.
        var sample: JSONValue {
            switch self {
            case .null: .null
            case .bool: .bool(true)
            case .int: .int(1)
            // Whole, so that it is accepted wherever a JSON number may stand for an integer (a list index).
            case .double: .double(1.0)
            case .string: .string("1")
            case .list: .array([])
            case .map: .object([:])
            }
        }

        var name: String { sample.celTypeName }
    }

    struct Typed {
        var node: ExpressionNode
        var type: ValueType?
    }

    private struct Variable {
        var name: String
        var slot: Int
        var type: ValueType?
    }

    private let source: String
    private let limits: Expression.Limits
    private var scope: [Variable] = []
    /// How many comprehension variable slots the evaluator needs: the deepest comprehension nesting.
    private(set) var variableCount = 0

    private static let comprehensionMacros: [String: ExpressionNode.Comprehension.Kind] = [
        "all": .all, "exists": .exists, "exists_one": .existsOne, "filter": .filter, "map": .map,
    ]

    init(source: String, limits: Expression.Limits) {
        self.source = source
        self.limits = limits
    }

    private func error(_ code: ExpressionError.Code, _ message: String, at offset: Int) -> ExpressionError {
        ExpressionError(code: code, message: message, offset: offset, in: source)
    }

    mutating func compile(_ syntax: ExpressionSyntax) throws(ExpressionError) -> Typed {
        switch syntax.kind {
        case .literal(let value):
            return Typed(node: .constant(value), type: ValueType(of: value))
        case .identifier(let name):
            if let variable = scope.last(where: { $0.name == name }) {
                return Typed(node: .variable(variable.slot), type: variable.type)
            }
            guard name == "input" else {
                throw error(.unknownIdentifier, "unknown identifier '\(name)'", at: syntax.offset)
            }
            return Typed(node: .input, type: nil)
        case .select(let baseSyntax, let field):
            return try compileSelect(baseSyntax, field: field, at: syntax.offset)
        case .index(let baseSyntax, let keySyntax):
            let base = try compile(baseSyntax)
            let key = try compile(keySyntax)
            let type = try checkOverload("[]", [base.type, key.type], at: syntax.offset) {
                (values) throws(ExpressionFailure) in
                try values[0].celIndex(values[1], at: 0)
            }
            return try fold(
                Typed(node: .index(base.node, key.node, offset: syntax.offset), type: type),
                operands: [base, key])
        case .call(let name, let nameOffset, let receiver, let arguments):
            return try compileCall(name, nameOffset: nameOffset, receiver: receiver, arguments: arguments)
        case .unary(let op, let operandSyntax):
            let operand = try compile(operandSyntax)
            let type = try checkOverload(op.rawValue, [operand.type], at: syntax.offset) {
                (values) throws(ExpressionFailure) in
                try ExpressionEvaluator.apply(op, values[0], at: 0)
            }
            return try fold(
                Typed(node: .unary(op, operand.node, offset: syntax.offset), type: type), operands: [operand])
        case .binary(let op, let leftSyntax, let rightSyntax):
            return try compileBinary(op, leftSyntax, rightSyntax, at: syntax.offset)
        case .and(let leftSyntax, let rightSyntax), .or(let leftSyntax, let rightSyntax):
            let isAnd = if case .and = syntax.kind { true } else { false }
            let name = isAnd ? "&&" : "||"
            let left = try compile(leftSyntax)
            let right = try compile(rightSyntax)
            if [left.type, right.type].contains(where: { $0 != nil && $0 != .bool }) {
                throw mismatch(name, [left.type, right.type], at: syntax.offset)
            }
            let node: ExpressionNode =
                isAnd
                ? .and(left.node, right.node, offset: syntax.offset) : .or(left.node, right.node, offset: syntax.offset)
            return try fold(Typed(node: node, type: .bool), operands: [left, right])
        case .conditional(let conditionSyntax, let thenSyntax, let otherwiseSyntax):
            let condition = try compile(conditionSyntax)
            try requireBool(condition, operator: "?:", at: syntax.offset)
            let then = try compile(thenSyntax)
            let otherwise = try compile(otherwiseSyntax)
            let type = then.type == otherwise.type ? then.type : nil
            if case .bool(let flag)? = condition.node.constantValue {
                return Typed(node: flag ? then.node : otherwise.node, type: type)
            }
            return Typed(
                node: .conditional(condition.node, then.node, otherwise.node, offset: syntax.offset), type: type)
        case .list(let elementSyntaxes):
            var elements: [Typed] = []
            for element in elementSyntaxes { elements.append(try compile(element)) }
            return try fold(Typed(node: .list(elements.map(\.node)), type: .list), operands: elements)
        case .map(let entrySyntaxes):
            var entries: [ExpressionNode.MapEntry] = []
            var operands: [Typed] = []
            for entry in entrySyntaxes {
                let key = try compile(entry.key)
                if let type = key.type, type != .string {
                    throw error(.typeMismatch, "map keys must be strings, not \(type.name)", at: entry.key.offset)
                }
                let value = try compile(entry.value)
                entries.append(ExpressionNode.MapEntry(key: key.node, value: value.node))
                operands += [key, value]
            }
            return try fold(Typed(node: .map(entries, offset: syntax.offset), type: .map), operands: operands)
        }
    }

    // MARK: - Selection and operators

    private mutating func compileSelect(
        _ baseSyntax: ExpressionSyntax, field: String, at offset: Int
    ) throws(ExpressionError) -> Typed {
        let base = try compile(baseSyntax)
        if let type = base.type, type != .map {
            throw error(.typeMismatch, "cannot select field '\(field)' from a value of type \(type.name)", at: offset)
        }
        let step = ExpressionNode.PathStep(field: field, offset: offset)
        let node: ExpressionNode
        if case .path(let root, let steps) = base.node {
            node = .path(root, steps + [step])
        } else {
            node = .path(base.node, [step])
        }
        return try fold(Typed(node: node, type: nil), operands: [base])
    }

    private mutating func compileBinary(
        _ op: ExpressionBinaryOperator, _ leftSyntax: ExpressionSyntax, _ rightSyntax: ExpressionSyntax, at offset: Int
    ) throws(ExpressionError) -> Typed {
        let left = try compile(leftSyntax)
        let right = try compile(rightSyntax)
        let type = try checkOverload(op.rawValue, [left.type, right.type], at: offset) {
            (values) throws(ExpressionFailure) in
            try JSONValue.celApply(op, values[0], values[1], at: 0)
        }
        var node = ExpressionNode.binary(op, left.node, right.node, offset: offset)
        // Specialised forms for the shapes routes use most; they behave exactly like the generic operator.
        switch (op, left.node.constantValue, right.node.constantValue) {
        case (.equal, nil, .string(let text)?), (.equal, .string(let text)?, nil):
            node = .equalsString(left.node.constantValue == nil ? left.node : right.node, text, negated: false)
        case (.notEqual, nil, .string(let text)?), (.notEqual, .string(let text)?, nil):
            node = .equalsString(left.node.constantValue == nil ? left.node : right.node, text, negated: true)
        case (.in, nil, .array(let items)?):
            let strings = items.compactMap(\.stringValue)
            if strings.count == items.count && !items.isEmpty {
                node = .inStrings(left.node, Set(strings))
            }
        default:
            break
        }
        return try fold(Typed(node: node, type: type), operands: [left, right])
    }

    private func requireBool(_ operand: Typed, operator name: String, at offset: Int) throws(ExpressionError) {
        if let type = operand.type, type != .bool { throw mismatch(name, [type], at: offset) }
    }

    private func mismatch(_ name: String, _ types: [ValueType?], at offset: Int) -> ExpressionError {
        let names = types.map { $0?.name ?? "dyn" }.joined(separator: ", ")
        return error(.typeMismatch, "no matching overload for '\(name)' applied to (\(names))", at: offset)
    }

    /// Asks the runtime implementation itself which operand types it accepts, by running it on a sample value of
    /// every type the operands might have; so the checker can never disagree with evaluation.
    ///
    /// Returns the result type when every accepted combination yields the same one, else `nil` (dynamic).
    private func checkOverload(
        _ name: String, _ types: [ValueType?], at offset: Int,
        _ apply: ([JSONValue]) throws(ExpressionFailure) -> JSONValue
    ) throws(ExpressionError) -> ValueType? {
        var combinations: [[ValueType]] = [[]]
        for type in types {
            let candidates = type.map { [$0] } ?? ValueType.allCases
            combinations = combinations.flatMap { prefix in candidates.map { prefix + [$0] } }
        }
        var accepted = false
        var results = Set<ValueType>()
        for combination in combinations {
            do {
                let result = try apply(combination.map(\.sample))
                accepted = true
                results.insert(ValueType(of: result))
            } catch where error.code == .typeMismatch {
                continue
            } catch {
                // Failures such as "no such key" depend on the value, not the type: the types are fine.
                accepted = true
            }
        }
        guard accepted else { throw mismatch(name, types, at: offset) }
        return results.count == 1 ? results.first : nil
    }

    /// Replaces a node whose operands are all constants by its value.
    ///
    /// Type errors found this way are certain, so they are reported now; value errors such as division by zero are
    /// left for run time, because the node might sit in a branch that is never taken.
    private func fold(_ typed: Typed, operands: [Typed]) throws(ExpressionError) -> Typed {
        guard operands.allSatisfy({ $0.node.constantValue != nil }) else { return typed }
        var evaluator = ExpressionEvaluator(input: .null, variableCount: 0, limits: limits)
        do {
            let value = try evaluator.evaluate(typed.node)
            return Typed(node: .constant(value), type: ValueType(of: value))
        } catch where [.typeMismatch, .invalidArgument, .invalidRegex].contains(error.code) {
            throw error.expressionError(in: source)
        } catch {
            return typed
        }
    }

    // MARK: - Calls and macros

    private mutating func compileCall(
        _ name: String, nameOffset: Int, receiver: ExpressionSyntax?, arguments: [ExpressionSyntax]
    ) throws(ExpressionError) -> Typed {
        if name == "has" && receiver == nil {
            return try compileHas(arguments, at: nameOffset)
        }
        if let kind = Self.comprehensionMacros[name] {
            guard let receiver else {
                throw error(
                    .invalidArgument, "\(name)() must be called on a list or map, as in input.items.\(name)(x, …)",
                    at: nameOffset)
            }
            return try compileComprehension(kind, receiver: receiver, arguments: arguments, at: nameOffset)
        }

        var qualifiedName = name
        var allArguments = arguments
        if let receiver {
            // `regex.match(p, s)` is a namespaced global function unless `regex` is a comprehension variable.
            if case .identifier(let namespace) = receiver.kind, !scope.contains(where: { $0.name == namespace }),
                ExpressionFunction.byName[namespace + "." + name] != nil
            {
                qualifiedName = namespace + "." + name
            } else {
                allArguments.insert(receiver, at: 0)
            }
        }
        guard let function = ExpressionFunction.byName[qualifiedName] else {
            throw error(.unknownFunction, "unknown function '\(qualifiedName)'", at: nameOffset)
        }
        guard allArguments.count == function.arity else {
            let offsetForStyle = allArguments.count - arguments.count
            throw error(
                .wrongArgumentCount,
                "'\(qualifiedName)' expects \(function.arity - offsetForStyle) argument"
                    + "\(function.arity - offsetForStyle == 1 ? "" : "s") but got \(arguments.count)",
                at: nameOffset)
        }
        var operands: [Typed] = []
        for argument in allArguments { operands.append(try compile(argument)) }

        var type = try checkOverload(qualifiedName, operands.map(\.type), at: nameOffset) {
            (values) throws(ExpressionFailure) in
            values.count == 1
                ? try function.apply(values[0], name: qualifiedName, at: 0)
                : try function.apply(values[0], values[1], name: qualifiedName, at: 0)
        }
        if case .dyn = function { type = nil }

        if let patternIndex = function.patternArgument {
            // A pattern from the event would be compiled on every evaluation, and chosen by whoever sends events.
            guard case .string(let pattern)? = operands[patternIndex].node.constantValue else {
                throw error(
                    .invalidArgument,
                    "the pattern of '\(qualifiedName)' must be a string literal, so that it is compiled once, "
                        + "with the expression",
                    at: allArguments[patternIndex].offset)
            }
            let regex: ExpressionRegex
            do {
                regex = try ExpressionRegex(pattern: pattern, at: allArguments[patternIndex].offset)
            } catch {
                throw error.expressionError(in: source)
            }
            let subject = operands[1 - patternIndex]
            return try fold(
                Typed(node: .matchRegex(subject.node, regex, offset: nameOffset), type: .bool), operands: [subject])
        }
        let node: ExpressionNode =
            operands.count == 1
            ? .call1(function, operands[0].node, name: qualifiedName, offset: nameOffset)
            : .call2(function, operands[0].node, operands[1].node, name: qualifiedName, offset: nameOffset)
        return try fold(Typed(node: node, type: type), operands: operands)
    }

    private mutating func compileHas(_ arguments: [ExpressionSyntax], at offset: Int) throws(ExpressionError) -> Typed {
        guard arguments.count == 1 else {
            throw error(.wrongArgumentCount, "'has' expects 1 argument but got \(arguments.count)", at: offset)
        }
        guard case .select(let baseSyntax, let field) = arguments[0].kind else {
            throw error(
                .invalidArgument, "has() requires a field selection, such as has(input.a.b)", at: arguments[0].offset)
        }
        let base = try compile(baseSyntax)
        return Typed(node: .presence(base.node, field: field), type: .bool)
    }

    private mutating func compileComprehension(
        _ kind: ExpressionNode.Comprehension.Kind, receiver: ExpressionSyntax, arguments: [ExpressionSyntax],
        at offset: Int
    ) throws(ExpressionError) -> Typed {
        let name = kind.rawValue
        let allowed = kind == .map ? [2, 3] : [2]
        guard allowed.contains(arguments.count) else {
            let expected = kind == .map ? "2 or 3 arguments" : "2 arguments"
            throw error(.wrongArgumentCount, "'\(name)' expects \(expected) but got \(arguments.count)", at: offset)
        }
        guard case .identifier(let variableName) = arguments[0].kind else {
            throw error(
                .invalidArgument, "the first argument of \(name)() must be a variable name", at: arguments[0].offset)
        }
        let range = try compile(receiver)
        let elementType: ValueType?
        switch range.type {
        case .list?, nil: elementType = nil
        case .map?: elementType = .string
        case let other?:
            throw error(.typeMismatch, "\(name)() cannot range over a value of type \(other.name)", at: offset)
        }

        let slot = scope.count
        scope.append(Variable(name: variableName, slot: slot, type: elementType))
        variableCount = max(variableCount, scope.count)
        defer { scope.removeLast() }

        var predicate: Typed?
        var transform: Typed?
        if kind == .map {
            if arguments.count == 3 { predicate = try compile(arguments[1]) }
            transform = try compile(arguments[arguments.count - 1])
        } else {
            predicate = try compile(arguments[1])
        }
        if let predicate, let type = predicate.type, type != .bool {
            throw error(.typeMismatch, "the predicate of \(name)() must be a bool, not \(type.name)", at: offset)
        }
        let comprehension = ExpressionNode.Comprehension(
            kind: kind, range: range.node, slot: slot, predicate: predicate?.node, transform: transform?.node,
            offset: offset)
        let resultType: ValueType = kind == .filter || kind == .map ? .list : .bool
        return Typed(node: .comprehension(comprehension), type: resultType)
    }
}
