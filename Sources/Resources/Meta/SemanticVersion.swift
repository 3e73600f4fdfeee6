/// A version `MAJOR.MINOR.PATCH[-PRERELEASE]` (a leading `v` is allowed), as Git tags name releases.
public struct SemanticVersion: Sendable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var patch: Int
    /// The dot-separated prerelease identifiers; empty for a release.
    public var prerelease: [String]

    /// Parses `1.2.3`, `v1.2.3` or `1.2.3-rc.1`; nil for anything else (build metadata after `+` is ignored).
    public init?(_ text: String) {
        var rest = Substring(text)
        if rest.first == "v" || rest.first == "V" { rest = rest.dropFirst() }
        if let plus = rest.firstIndex(of: "+") { rest = rest[..<plus] }
        var pre: [String] = []
        if let dash = rest.firstIndex(of: "-") {
            pre = rest[rest.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !pre.contains(where: \.isEmpty) else { return nil }
            rest = rest[..<dash]
        }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let major = Int(parts[0]), let minor = Int(parts[1]), let patch = Int(parts[2]),
            major >= 0, minor >= 0, patch >= 0
        else { return nil }
        (self.major, self.minor, self.patch, self.prerelease) = (major, minor, patch, pre)
    }

    public init(major: Int, minor: Int, patch: Int, prerelease: [String] = []) {
        (self.major, self.minor, self.patch, self.prerelease) = (major, minor, patch, prerelease)
    }

    public var description: String {
        "\(major).\(minor).\(patch)" + (prerelease.isEmpty ? "" : "-" + prerelease.joined(separator: "."))
    }

    public static func < (lhs: SemanticVersion, rhs: SemanticVersion) -> Bool {
        if (lhs.major, lhs.minor, lhs.patch) != (rhs.major, rhs.minor, rhs.patch) {
            return (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
        }
        // A release sorts after its prereleases; identifiers compare numerically when both are numbers.
        if lhs.prerelease.isEmpty || rhs.prerelease.isEmpty { return !lhs.prerelease.isEmpty && rhs.prerelease.isEmpty }
        for (left, right) in zip(lhs.prerelease, rhs.prerelease) where left != right {
            switch (Int(left), Int(right)) {
            case (let l?, let r?): return l < r
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return left < right
            }
        }
        return lhs.prerelease.count < rhs.prerelease.count
    }
}

/// A range of versions as npm and Flux write them: comparators joined by spaces (all must hold), alternatives
/// joined by `||`; a comparator is `>=1.2.0`, `>1.2.0`, `<=`, `<`, `=`, `~1.2` (same minor), `^1.2` (same major),
/// or an x-range `1.x`, `1.2.x`, `*`. Prereleases match only when the range names one.
public struct SemanticVersionRange: Sendable {
    struct Comparator: Sendable {
        var lower: (version: SemanticVersion, inclusive: Bool)?
        var upper: (version: SemanticVersion, inclusive: Bool)?

        func contains(_ version: SemanticVersion) -> Bool {
            if let lower, lower.inclusive ? version < lower.version : version <= lower.version { return false }
            if let upper, upper.inclusive ? version > upper.version : version >= upper.version { return false }
            return true
        }
    }

    let alternatives: [[Comparator]]
    let allowsPrerelease: Bool

    /// Parses a range; nil when it is not one.
    public init?(_ text: String) {
        var alternatives: [[Comparator]] = []
        for alternative in text.split(separator: "||", omittingEmptySubsequences: false) {
            var comparators: [Comparator] = []
            for word in alternative.split(separator: " ") {
                guard let comparator = Self.comparator(String(word)) else { return nil }
                comparators.append(comparator)
            }
            guard !comparators.isEmpty else { return nil }
            alternatives.append(comparators)
        }
        guard !alternatives.isEmpty else { return nil }
        self.alternatives = alternatives
        allowsPrerelease = text.contains("-")
    }

    /// Whether `version` is in the range.
    public func contains(_ version: SemanticVersion) -> Bool {
        if !version.prerelease.isEmpty && !allowsPrerelease { return false }
        return alternatives.contains { $0.allSatisfy { $0.contains(version) } }
    }

    /// The highest of `versions` in the range.
    public func highest<S: Sequence>(in versions: S) -> SemanticVersion? where S.Element == SemanticVersion {
        versions.filter(contains).max()
    }

    private static func comparator(_ word: String) -> Comparator? {
        for op in [">=", "<=", ">", "<", "=", "~", "^"] where word.hasPrefix(op) {
            let rest = String(word.dropFirst(op.count))
            guard let (low, high) = partial(rest) else { return nil }
            switch op {
            case ">=": return Comparator(lower: (low, true))
            case ">": return high.map { Comparator(lower: ($0, true)) } ?? Comparator(lower: (low, false))
            case "<": return Comparator(upper: (low, false))
            case "<=": return high.map { Comparator(upper: ($0, false)) } ?? Comparator(upper: (low, true))
            case "=": return Comparator(lower: (low, true), upper: high.map { ($0, false) } ?? (low, true))
            case "~":
                return Comparator(
                    lower: (low, true),
                    upper: (SemanticVersion(major: low.major, minor: low.minor + 1, patch: 0, prerelease: ["0"]), false))
            default:
                return Comparator(
                    lower: (low, true),
                    upper: (SemanticVersion(major: low.major + 1, minor: 0, patch: 0, prerelease: ["0"]), false))
            }
        }
        guard let (low, high) = partial(word) else { return nil }
        return Comparator(lower: (low, true), upper: high.map { ($0, false) } ?? (low, true))
    }

    /// A full or partial version: `1.2.3` → (1.2.3, nil); `1.2` or `1.2.x` → (1.2.0, 1.3.0-0); `*` → (0.0.0, nil
    /// upper for any).
    private static func partial(_ text: String) -> (SemanticVersion, SemanticVersion?)? {
        if let full = SemanticVersion(text) { return (full, nil) }
        var body = Substring(text)
        if body.first == "v" { body = body.dropFirst() }
        let parts = body.split(separator: ".").filter { !["x", "X", "*"].contains($0) }
        guard parts.count < 3, parts.allSatisfy({ Int($0) != nil }) else { return nil }
        let numbers = parts.compactMap { Int($0) }
        switch numbers.count {
        case 0: return (SemanticVersion(major: 0, minor: 0, patch: 0), SemanticVersion(major: Int.max, minor: 0, patch: 0))
        case 1:
            return (
                SemanticVersion(major: numbers[0], minor: 0, patch: 0),
                SemanticVersion(major: numbers[0] + 1, minor: 0, patch: 0, prerelease: ["0"])
            )
        default:
            return (
                SemanticVersion(major: numbers[0], minor: numbers[1], patch: 0),
                SemanticVersion(major: numbers[0], minor: numbers[1] + 1, patch: 0, prerelease: ["0"])
            )
        }
    }
}
