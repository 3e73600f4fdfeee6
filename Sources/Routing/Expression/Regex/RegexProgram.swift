/// A pattern compiled to a Thompson NFA: a list of instructions that ``RegexProgram/matches(_:)`` runs as a Pike
/// VM, in time proportional to the pattern size times the text length, whatever the pattern.
struct RegexProgram: Sendable {
    /// Most instructions a pattern may compile to; `{m,n}` copies its operand, so this bounds nested counts
    /// such as `(a{1000}){1000}`, and with it the cost of each scalar of text.
    static let maxInstructions = 5000

    enum Instruction: Sendable, Equatable {
        /// Consumes this scalar.
        case scalar(Unicode.Scalar)
        /// Consumes a scalar in the set.
        case set(RegexCharacterSet)
        /// Continues at both targets.
        case split(Int, Int)
        case jump(Int)
        /// Continues at the next instruction if the test holds here.
        case assertion(RegexAssertion)
        case match
    }

    private(set) var instructions: [Instruction] = []

    /// Compiles `node`, failing with `pattern too large` past ``maxInstructions``.
    init(_ node: RegexNode) throws(RegexError) {
        try emit(node)
        try append(.match)
    }

    // MARK: - Compiling

    private mutating func append(_ instruction: Instruction) throws(RegexError) {
        guard instructions.count < Self.maxInstructions else {
            throw RegexError(
                "pattern too large: it compiles to more than \(Self.maxInstructions) instructions", at: nil)
        }
        instructions.append(instruction)
    }

    /// Appends a placeholder to patch once its targets are known.
    private mutating func reserve() throws(RegexError) -> Int {
        try append(.jump(-1))
        return instructions.count - 1
    }

    private mutating func emit(_ node: RegexNode) throws(RegexError) {
        switch node {
        case .empty:
            break
        case .scalar(let scalar):
            try append(.scalar(scalar))
        case .set(let set):
            try append(.set(set))
        case .assertion(let assertion):
            try append(.assertion(assertion))
        case .concatenation(let items):
            for item in items { try emit(item) }
        case .alternation(let alternatives):
            // split L1, next; L1: a1; jump end; next: split L2, next2; …; last alternative; end:
            var jumpsToEnd: [Int] = []
            for (index, alternative) in alternatives.enumerated() {
                if index == alternatives.count - 1 {
                    try emit(alternative)
                } else {
                    let split = try reserve()
                    try emit(alternative)
                    jumpsToEnd.append(try reserve())
                    instructions[split] = .split(split + 1, instructions.count)
                }
            }
            for jump in jumpsToEnd { instructions[jump] = .jump(instructions.count) }
        case .repetition(let operand, let minimum, let maximum):
            for _ in 0..<minimum { try emit(operand) }
            if let maximum {
                // x{0,k}: split body, end; x; split body, end; x; … — every optional copy may skip to the end.
                var splits: [Int] = []
                for _ in minimum..<maximum {
                    splits.append(try reserve())
                    try emit(operand)
                }
                for split in splits { instructions[split] = .split(split + 1, instructions.count) }
            } else {
                // loop: split body, end; x; jump loop; end:
                let loop = try reserve()
                try emit(operand)
                try append(.jump(loop))
                instructions[loop] = .split(loop + 1, instructions.count)
            }
        }
    }

    // MARK: - Matching

    /// Whether the pattern matches anywhere in `text` (a search, as CEL's `matches`).
    ///
    /// Threads are kept as a set of instruction indices, so each scalar costs at most one visit per instruction:
    /// no backtracking, and patterns like `(a+)+$` cannot take exponential time.
    func matches(_ text: String) -> Bool {
        var current = ThreadList(capacity: instructions.count)
        var next = ThreadList(capacity: instructions.count)
        var stack: [Int] = []
        var previous: Unicode.Scalar? = nil
        var iterator = text.unicodeScalars.makeIterator()
        var scalar = iterator.next()
        while true {
            // Start a new attempt at every position: a search, not a match anchored at the start.
            if add(0, to: &current, after: previous, before: scalar, stack: &stack) { return true }
            guard let consumed = scalar else { return false }
            let following = iterator.next()
            for index in current.indices {
                let accepts: Bool
                switch instructions[index] {
                case .scalar(let expected): accepts = expected == consumed
                case .set(let set): accepts = set.contains(consumed)
                default: accepts = false
                }
                if accepts, add(index + 1, to: &next, after: consumed, before: following, stack: &stack) {
                    return true
                }
            }
            swap(&current, &next)
            next.removeAll()
            previous = consumed
            scalar = following
        }
    }

    /// Adds the thread at `start` and every thread it reaches without consuming; true when one reaches `match`.
    ///
    /// Iterative, with an explicit stack: a chain of `x?x?x?…` would otherwise recurse once per split.
    private func add(
        _ start: Int, to list: inout ThreadList, after previous: Unicode.Scalar?, before next: Unicode.Scalar?,
        stack: inout [Int]
    ) -> Bool {
        stack.append(start)
        while let index = stack.popLast() {
            guard list.insert(index) else { continue }
            switch instructions[index] {
            case .jump(let target):
                stack.append(target)
            case .split(let first, let second):
                stack.append(second)
                stack.append(first)
            case .assertion(let assertion):
                if assertion.holds(after: previous, before: next) { stack.append(index + 1) }
            case .match:
                stack.removeAll(keepingCapacity: true)
                return true
            case .scalar, .set:
                break
            }
        }
        return false
    }
}

/// A set of instruction indices with O(1) insert, membership and clear, kept in insertion order (a sparse set).
private struct ThreadList {
    private var dense: [Int]
    private var sparse: [Int]
    private(set) var count = 0

    init(capacity: Int) {
        dense = Array(repeating: 0, count: capacity)
        sparse = Array(repeating: 0, count: capacity)
    }

    var indices: ArraySlice<Int> { dense[0..<count] }

    /// Inserts `index`; false when it was already there.
    mutating func insert(_ index: Int) -> Bool {
        let slot = sparse[index]
        if slot < count && dense[slot] == index { return false }
        sparse[index] = count
        dense[count] = index
        count += 1
        return true
    }

    mutating func removeAll() { count = 0 }
}
