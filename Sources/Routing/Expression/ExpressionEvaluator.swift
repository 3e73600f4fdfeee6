#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Resources

/// Walks an ``ExpressionNode`` tree against one input, within the step, memory and time budgets of
/// ``Expression/Limits``, so that neither comprehensions nor large events make one evaluation unbounded.
struct ExpressionEvaluator {
    private let input: JSONValue
    /// Comprehension variables; nested comprehensions use successive slots.
    private var variables: [JSONValue]
    private let limits: Expression.Limits
    private var steps = 0
    private var builtBytes = 0
    /// The clock is first read after 1,024 steps, so the many evaluations that end sooner never read it.
    private var nextTimeCheck = 1024
    /// In the thread's CPU time, in nanoseconds.
    private var deadline: UInt64?

    init(input: JSONValue, variableCount: Int, limits: Expression.Limits) {
        self.input = input
        // An empty array does not allocate, so expressions without comprehensions pay nothing here.
        self.variables = variableCount == 0 ? [] : Array(repeating: .null, count: variableCount)
        self.limits = limits
    }

    /// Counts `cost` steps, failing once the budget is spent.
    private mutating func charge(_ cost: Int = 1) throws(ExpressionFailure) {
        steps &+= cost
        if steps > limits.maxEvaluationSteps {
            throw ExpressionFailure(.tooComplex, "evaluation exceeded \(limits.maxEvaluationSteps) steps", at: 0)
        }
        if steps >= nextTimeCheck {
            try checkTime()
        }
    }

    /// The time budget runs from the first check, 1,024 steps in: a negligible part of it.
    ///
    /// It counts the CPU time of the evaluating thread, not the wall clock: evaluation never suspends, so it stays
    /// on one thread, and a host too busy to give it a core cannot make it fail (and so change what an event
    /// matches).
    private mutating func checkTime() throws(ExpressionFailure) {
        nextTimeCheck = steps &+ 1024
        let now = Self.threadCPUNanoseconds()
        guard let deadline else {
            let budget = limits.maxEvaluationTime.components
            let nanoseconds = budget.seconds.multipliedReportingOverflow(by: 1_000_000_000)
            let total = nanoseconds.overflow ? Int64.max : nanoseconds.partialValue &+ budget.attoseconds / 1_000_000_000
            deadline = now &+ UInt64(max(0, total))
            return
        }
        if now > deadline {
            throw ExpressionFailure(
                .tooComplex, "evaluation used more than \(limits.maxEvaluationTime) of CPU time", at: 0)
        }
    }

    private static func threadCPUNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// Charges for work proportional to a value's size: a step per list or map entry, a step per 64 string bytes.
    private mutating func chargeWork(on value: JSONValue) throws(ExpressionFailure) {
        switch value {
        case .string(let text):
            let size = text.utf8.count
            if size >= 64 { try charge(size >> 6) }
        case .array(let items):
            try charge(items.count)
        case .object(let members):
            try charge(members.count)
        default:
            break
        }
    }

    /// Counts the bytes of a value this evaluation built, failing once the memory budget is spent.
    private mutating func chargeMemory(for value: JSONValue) throws(ExpressionFailure) {
        let size: Int
        switch value {
        case .string(let text): size = text.utf8.count
        case .array(let items): size = items.count &* 16
        case .object(let members): size = members.count &* 16
        default: return
        }
        builtBytes &+= size
        if builtBytes > limits.maxEvaluationBytes {
            throw ExpressionFailure(
                .tooComplex, "evaluation built more than \(limits.maxEvaluationBytes) bytes", at: 0)
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
            // Comparison, membership and concatenation take time in proportion to the operands' size.
            try chargeWork(on: leftValue)
            try chargeWork(on: rightValue)
            let result = try JSONValue.celApply(op, leftValue, rightValue, at: offset)
            if op == .add { try chargeMemory(for: result) }
            return result
        case .equalsString(let operand, let text, let negated):
            let value = try evaluate(operand)
            guard case .string(let other) = value else { return .bool(negated) }
            try chargeWork(on: value)
            return .bool((other == text) != negated)
        case .inStrings(let operand, let set):
            let value = try evaluate(operand)
            guard case .string(let text) = value else { return .bool(false) }
            try chargeWork(on: value)
            return .bool(set.contains(text))
        case .call1(let function, let argument, let name, let offset):
            let value = try evaluate(argument)
            try chargeWork(on: value)
            let result = try function.apply(value, name: name, at: offset)
            if function.buildsItsResult { try chargeMemory(for: result) }
            return result
        case .call2(let function, let first, let second, let name, let offset):
            let firstValue = try evaluate(first)
            let secondValue = try evaluate(second)
            try chargeWork(on: firstValue)
            try chargeWork(on: secondValue)
            return try function.apply(firstValue, secondValue, name: name, at: offset)
        case .matchRegex(let subject, let regex, let offset):
            let value = try evaluate(subject)
            try chargeWork(on: value)
            guard case .string(let text) = value else {
                throw .noOverload("matches", [value.celTypeName, "string"], at: offset)
            }
            return .bool(regex.matches(text))
        case .list(let elements):
            var items: [JSONValue] = []
            items.reserveCapacity(elements.count)
            for element in elements { items.append(try evaluate(element)) }
            let list = JSONValue.array(items)
            try chargeMemory(for: list)
            return list
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
            let map = JSONValue.object(members)
            try chargeMemory(for: map)
            return map
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
            let list = JSONValue.array(kept)
            try chargeMemory(for: list)
            return list
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
            let list = JSONValue.array(mapped)
            try chargeMemory(for: list)
            return list
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
