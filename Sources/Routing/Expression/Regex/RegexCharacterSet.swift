/// A set of Unicode scalars as sorted, disjoint ranges: a character class, `.`, `\d` or a case-folded literal.
struct RegexCharacterSet: Sendable, Equatable {
    /// Sorted, non-overlapping and non-adjacent ranges of scalar values.
    private(set) var ranges: [ClosedRange<UInt32>] = []
    /// Whether a scalar also matches when its simple lowercase or uppercase form is in the set (`(?i)`).
    var foldsCase = false
    /// Whether the set stands for the scalars it does not hold (`[^…]`); applied after case folding, so
    /// `(?i)[^a]` matches neither `a` nor `A`.
    var isNegated = false

    /// An empty set.
    init() {}

    /// The set of the scalars in `ranges`.
    init(_ ranges: [ClosedRange<UInt32>], foldsCase: Bool = false) {
        for range in ranges { insert(range) }
        self.foldsCase = foldsCase
    }

    static let maximumScalar: UInt32 = 0x10FFFF

    /// Every scalar: `(?s).`.
    static let all = RegexCharacterSet([0...maximumScalar])
    /// Every scalar but `\n`: `.`.
    static let allButNewline = RegexCharacterSet([0...0x09, 0x0B...maximumScalar])
    /// `\d`, ASCII digits as in RE2.
    static let digits = RegexCharacterSet([0x30...0x39])
    /// `\w`, ASCII letters, digits and `_` as in RE2.
    static let wordCharacters = RegexCharacterSet([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
    /// `\s`: tab, newline, form feed, carriage return and space, as in RE2.
    static let whitespace = RegexCharacterSet([0x09...0x0A, 0x0C...0x0D, 0x20...0x20])

    /// The POSIX classes `[[:alpha:]]` and so on, ASCII only as in RE2.
    static let posixClasses: [String: RegexCharacterSet] = [
        "alnum": RegexCharacterSet([0x30...0x39, 0x41...0x5A, 0x61...0x7A]),
        "alpha": RegexCharacterSet([0x41...0x5A, 0x61...0x7A]),
        "ascii": RegexCharacterSet([0x00...0x7F]),
        "blank": RegexCharacterSet([0x09...0x09, 0x20...0x20]),
        "cntrl": RegexCharacterSet([0x00...0x1F, 0x7F...0x7F]),
        "digit": digits,
        "graph": RegexCharacterSet([0x21...0x7E]),
        "lower": RegexCharacterSet([0x61...0x7A]),
        "print": RegexCharacterSet([0x20...0x7E]),
        "punct": RegexCharacterSet([0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E]),
        "space": RegexCharacterSet([0x09...0x0D, 0x20...0x20]),
        "upper": RegexCharacterSet([0x41...0x5A]),
        "word": wordCharacters,
        "xdigit": RegexCharacterSet([0x30...0x39, 0x41...0x46, 0x61...0x66]),
    ]

    /// Adds a range, keeping the ranges sorted and merged.
    mutating func insert(_ range: ClosedRange<UInt32>) {
        var lower = range.lowerBound
        var upper = range.upperBound
        var merged: [ClosedRange<UInt32>] = []
        merged.reserveCapacity(ranges.count + 1)
        var inserted = false
        for existing in ranges {
            if existing.upperBound &+ 1 < lower {
                merged.append(existing)
            } else if upper &+ 1 < existing.lowerBound {
                if !inserted {
                    merged.append(lower...upper)
                    inserted = true
                }
                merged.append(existing)
            } else {
                lower = min(lower, existing.lowerBound)
                upper = max(upper, existing.upperBound)
            }
        }
        if !inserted { merged.append(lower...upper) }
        ranges = merged
    }

    /// Adds every scalar of `other`.
    mutating func formUnion(_ other: RegexCharacterSet) {
        for range in other.ranges { insert(range) }
    }

    /// The ranges of every scalar value not in this set, for `\D`, `\W`, `\S` and `[:^alpha:]`.
    func complement() -> RegexCharacterSet {
        var result = RegexCharacterSet()
        var next: UInt32 = 0
        for range in ranges {
            if range.lowerBound > next { result.ranges.append(next...(range.lowerBound - 1)) }
            next = range.upperBound + 1
        }
        if next <= Self.maximumScalar { result.ranges.append(next...Self.maximumScalar) }
        return result
    }

    /// Whether `scalar`, or under case folding one of its simple case forms, is in the set.
    func contains(_ scalar: Unicode.Scalar) -> Bool {
        var found = containsExactly(scalar.value)
        if !found && foldsCase {
            found = Self.caseVariants(of: scalar).contains { containsExactly($0.value) }
        }
        return found != isNegated
    }

    private func containsExactly(_ value: UInt32) -> Bool {
        var low = 0
        var high = ranges.count
        while low < high {
            let middle = (low + high) / 2
            if ranges[middle].upperBound < value {
                low = middle + 1
            } else if ranges[middle].lowerBound > value {
                high = middle
            } else {
                return true
            }
        }
        return false
    }

    /// The simple (one-scalar) lowercase and uppercase forms of `scalar` that differ from it.
    static func caseVariants(of scalar: Unicode.Scalar) -> [Unicode.Scalar] {
        let value = scalar.value
        if value < 0x80 {
            if (0x41...0x5A).contains(value) { return [Unicode.Scalar(UInt8(value + 0x20))] }
            if (0x61...0x7A).contains(value) { return [Unicode.Scalar(UInt8(value - 0x20))] }
            return []
        }
        var variants: [Unicode.Scalar] = []
        for mapping in [scalar.properties.lowercaseMapping, scalar.properties.uppercaseMapping] {
            let scalars = mapping.unicodeScalars
            if scalars.count == 1, let variant = scalars.first, variant != scalar { variants.append(variant) }
        }
        return variants
    }
}
