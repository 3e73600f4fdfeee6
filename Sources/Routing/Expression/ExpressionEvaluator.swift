import Resources

/// Walks an ``ExpressionNode`` tree against one input, counting steps so comprehensions cannot run unbounded.
struct ExpressionEvaluator {
    private let input: JSONValue
    /// Comprehension variables; nested comprehensions use successive slots.
    private var variables: [JSONValue]
    private var steps = 0
    private let maxSteps: Int

    init(input: JSONValue, variableCount: Int, maxSteps: Int) {
        self.input = input
        // An empty array does not allocate, so expressions without comprehensions pay nothing here.
        self.variables = variableCount == 0 ? [] : Array(repeating: .null, count: variableCount)
        self.maxSteps = maxSteps
    }

    /// Counts `cost` steps, failing once the budget is spent.
    private mutating func charge(_ cost: Int = 1) throws(ExpressionFailure) {
        steps &+= cost
        if steps > maxSteps {
            throw ExpressionFailure(.tooComplex, "evaluation exceeded \(maxSteps) steps", at: 0)
        }
    }

    mutating func evaluate(_ node: ExpressionNode) throws(ExpressionFailure) -> JSONValue {
        try charge()
        switch node {
        case .constant(let value):
            return value
        case .input:
            return input
        case .variable(let slot):
            return variables[slot]
        case .path(let base, let steps):
            var value = try evaluate(base)
            for step in steps {
                value = try value.celSelect(step.field, at: step.offset)
            }
            return value
        case .presence(let base, let field):
            return .bool(try isPresent(base, field))
        case .index(let base, let key, let offset):
            return try evaluate(base).celIndex(try evaluate(key), at: offset)
        case .unary(let op, let operand, let offset):
            return try Self.apply(op, try evaluate(operand), at: offset)
        case .and(let left, let right, let offset):
            return try logical(left, right, isAnd: true, at: offset)
        case .or(let left, let right, let offset):
            return try logical(left, right, isAnd: false, at: offset)
        case .conditional(let condition, let then, let otherwise, let offset):
            let value = try evaluate(condition)
            guard case .bool(let flag) = value else {
                throw .noOverload("?:", [value.celTypeName], at: offset)
            }
            return try evaluate(flag ? then : otherwise)
        case .binary(let op, let left, let right, let offset):
            let leftValue = try evaluate(left)
            let rightValue = try evaluate(right)
            // Work proportional to container size (concatenation, membership) is paid for in steps.
            if case .array(let items) = rightValue { try charge(items.count) }
            if case .array(let items) = leftValue { try charge(items.count) }
            return try JSONValue.celApply(op, leftValue, rightValue, at: offset)
        case .equalsString(let operand, let text, let negated):
            let value = try evaluate(operand)
            if case .string(let other) = value { return .bool((other == text) != negated) }
            return .bool(negated)
        case .inStrings(let operand, let set):
            guard case .string(let text) = try evaluate(operand) else { return .bool(false) }
            return .bool(set.contains(text))
        case .call1(let function, let argument, let name, let offset):
            return try function.apply(try evaluate(argument), name: name, at: offset)
        case .call2(let function, let first, let second, let name, let offset):
            let firstValue = try evaluate(first)
            let secondValue = try evaluate(second)
            if case .array(let items) = firstValue { try charge(items.count) }
            return try function.apply(firstValue, secondValue, name: name, at: offset)
        case .matchRegex(let subject, let regex, let offset):
            let value = try evaluate(subject)
            guard case .string(let text) = value else {
                throw .noOverload("matches", [value.celTypeName, "string"], at: offset)
            }
            return .bool(regex.matches(text))
        case .list(let elements):
            var items: [JSONValue] = []
            items.reserveCapacity(elements.count)
            for element in elements { items.append(try evaluate(element)) }
            return .array(items)
        case .map(let entries, let offset):
            var members: [String: JSONValue] = [:]
            members.reserveCapacity(entries.count)
            for entry in entries {
                let key = try evaluate(entry.key)
                guard case .string(let name) = key else {
                    throw ExpressionFailure(
                        .typeMismatch, "map keys must be strings, not \(key.celTypeName)", at: offset)
                }
                guard members.updateValue(try evaluate(entry.value), forKey: name) == nil else {
                    throw ExpressionFailure(.invalidArgument, "duplicate map key '\(name)'", at: offset)
                }
            }
            return .object(members)
        case .comprehension(let comprehension):
            return try evaluate(comprehension)
        }
    }

    /// `!` and unary `-`.
    static func apply(
        _ op: ExpressionUnaryOperator, _ value: JSONValue, at offset: Int
    ) throws(ExpressionFailure) -> JSONValue {
        switch (op, value) {
        case (.not, .bool(let flag)):
            return .bool(!flag)
        case (.negate, .int(let number)):
            guard number != .min else { throw ExpressionFailure(.overflow, "integer overflow in '-'", at: offset) }
            return .int(-number)
        case (.negate, .double(let number)):
            return .double(-number)
        default:
            throw .noOverload(op.rawValue, [value.celTypeName], at: offset)
        }
    }

    /// `has(base.field)`: false when the field, or any field on the way to it, is missing or not a map.
    ///
    /// CEL would report a missing intermediate field as an error; routes test optional parts of events, so a path
    /// that cannot be followed simply means "not present".
    private mutating func isPresent(_ base: ExpressionNode, _ field: String) throws(ExpressionFailure) -> Bool {
        let root: ExpressionNode
        let path: [ExpressionNode.PathStep]
        if case .path(let pathRoot, let steps) = base {
            root = pathRoot
            path = steps
        } else {
            root = base
            path = []
        }
        var value: JSONValue
        do {
            value = try evaluate(root)
        } catch where error.code == .noSuchField {
            return false
        }
        for step in path {
            guard case .object(let members) = value, let member = members[step.field] else { return false }
            value = member
        }
        guard case .object(let members) = value else { return false }
        return members[field] != nil
    }

    /// CEL's `&&` and `||`: commutative, and a deciding operand (false for `&&`, true for `||`) wins even when
    /// the other side is an error or not a boolean.
    private mutating func logical(
        _ left: ExpressionNode, _ right: ExpressionNode, isAnd: Bool, at offset: Int
    ) throws(ExpressionFailure) -> JSONValue {
        let deciding = !isAnd
        let name = isAnd ? "&&" : "||"
        var failure: ExpressionFailure?
        do {
            let value = try evaluate(left)
            switch value {
            case .bool(let flag) where flag == deciding: return value
            case .bool: break
            default: failure = .noOverload(name, [value.celTypeName, "bool"], at: offset)
            }
        } catch where error.code != .tooComplex {
            failure = error
        }
        let value = try evaluate(right, orThrow: failure)
        switch value {
        case .bool(let flag) where flag == deciding:
            return value
        case .bool:
            if let failure { throw failure }
            return value
        default:
            throw failure ?? .noOverload(name, ["bool", value.celTypeName], at: offset)
        }
    }

    /// Evaluates `node`, preferring an earlier failure over a new one so errors report the leftmost problem.
    private mutating func evaluate(
        _ node: ExpressionNode, orThrow earlier: ExpressionFailure?
    ) throws(ExpressionFailure) -> JSONValue {
        do {
            return try evaluate(node)
        } catch {
            if error.code == .tooComplex { throw error }
            throw earlier ?? error
        }
    }

    private mutating func evaluate(
        _ comprehension: ExpressionNode.Comprehension
    ) throws(ExpressionFailure) -> JSONValue {
        let range = try evaluate(comprehension.range)
        let items: [JSONValue]
        switch range {
        case .array(let elements):
            items = elements
        case .object(let members):
            // Keys are sorted so filter and map give the same list on every run.
            items = members.keys.sorted().map { .string($0) }
        default:
            throw ExpressionFailure(
                .typeMismatch,
                "\(comprehension.kind.rawValue)() cannot range over a value of type \(range.celTypeName)",
                at: comprehension.offset)
        }
        let slot = comprehension.slot
        let saved = variables[slot]
        defer { variables[slot] = saved }

        switch comprehension.kind {
        case .exists, .all:
            // The deciding result wins over errors in other iterations, mirroring `||` and `&&`.
            let deciding = comprehension.kind == .exists
            var failure: ExpressionFailure?
            for item in items {
                try charge()
                variables[slot] = item
                do {
                    switch try evaluatePredicate(comprehension) {
                    case deciding: return .bool(deciding)
                    default: break
                    }
                } catch where error.code != .tooComplex {
                    failure = failure ?? error
                }
            }
            if let failure { throw failure }
            return .bool(!deciding)
        case .existsOne:
            var count = 0
            for item in items {
                try charge()
                variables[slot] = item
                if try evaluatePredicate(comprehension) { count += 1 }
            }
            return .bool(count == 1)
        case .filter:
            var kept: [JSONValue] = []
            for item in items {
                try charge()
                variables[slot] = item
                if try evaluatePredicate(comprehension) { kept.append(item) }
            }
            return .array(kept)
        case .map:
            var mapped: [JSONValue] = []
            mapped.reserveCapacity(items.count)
            for item in items {
                try charge()
                variables[slot] = item
                if comprehension.predicate != nil, !(try evaluatePredicate(comprehension)) { continue }
                guard let transform = comprehension.transform else { continue }
                mapped.append(try evaluate(transform))
            }
            return .array(mapped)
        }
    }

    private mutating func evaluatePredicate(
        _ comprehension: ExpressionNode.Comprehension
    ) throws(ExpressionFailure) -> Bool {
        guard let predicate = comprehension.predicate else { return true }
        let value = try evaluate(predicate)
        guard case .bool(let flag) = value else {
            throw ExpressionFailure(
                .typeMismatch,
                "the predicate of \(comprehension.kind.rawValue)() must be a bool, not \(value.celTypeName)",
                at: comprehension.offset)
        }
        return flag
    }
}
