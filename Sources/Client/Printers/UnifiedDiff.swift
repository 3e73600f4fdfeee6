/// A line-based diff (Myers' O(ND) algorithm) and its rendering in the unified format of `diff -u`.
public enum UnifiedDiff {
    /// One line of an edit script.
    public enum Edit: Sendable, Equatable {
        /// A line in both texts.
        case keep(String)
        /// A line only in the old text.
        case delete(String)
        /// A line only in the new text.
        case insert(String)
    }

    /// The shortest edit script turning `old` into `new`, deletions before insertions within a change.
    public static func edits(from old: [String], to new: [String]) -> [Edit] {
        // Common prefix and suffix need no search; this keeps large, mostly equal inputs fast.
        var prefix = 0
        while prefix < old.count, prefix < new.count, old[prefix] == new[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < old.count - prefix, suffix < new.count - prefix,
            old[old.count - 1 - suffix] == new[new.count - 1 - suffix]
        {
            suffix += 1
        }
        let a = Array(old[prefix..<(old.count - suffix)])
        let b = Array(new[prefix..<(new.count - suffix)])
        var result = old[..<prefix].map(Edit.keep)
        result += middle(a, b)
        result += old[(old.count - suffix)...].map(Edit.keep)
        return result
    }

    /// Myers' greedy algorithm with the trace kept for backtracking.
    private static func middle(_ a: [String], _ b: [String]) -> [Edit] {
        let n = a.count
        let m = b.count
        if n == 0 { return b.map(Edit.insert) }
        if m == 0 { return a.map(Edit.delete) }
        let maximum = n + m
        let offset = maximum
        var frontier = [Int](repeating: 0, count: 2 * maximum + 2)
        var trace: [[Int]] = []
        var found = false
        for depth in 0...maximum {
            trace.append(frontier)
            for diagonal in stride(from: -depth, through: depth, by: 2) {
                var x: Int
                if diagonal == -depth
                    || (diagonal != depth && frontier[offset + diagonal - 1] < frontier[offset + diagonal + 1])
                {
                    x = frontier[offset + diagonal + 1]
                } else {
                    x = frontier[offset + diagonal - 1] + 1
                }
                var y = x - diagonal
                while x < n, y < m, a[x] == b[y] {
                    x += 1
                    y += 1
                }
                frontier[offset + diagonal] = x
                if x >= n && y >= m {
                    found = true
                    break
                }
            }
            if found { break }
        }
        // Walk back from (n, m) through the saved frontiers.
        var edits: [Edit] = []
        var x = n
        var y = m
        for depth in stride(from: trace.count - 1, through: 0, by: -1) {
            let saved = trace[depth]
            let diagonal = x - y
            let previousDiagonal: Int
            if diagonal == -depth
                || (diagonal != depth && saved[offset + diagonal - 1] < saved[offset + diagonal + 1])
            {
                previousDiagonal = diagonal + 1
            } else {
                previousDiagonal = diagonal - 1
            }
            let previousX = saved[offset + previousDiagonal]
            let previousY = previousX - previousDiagonal
            while x > previousX, y > previousY {
                edits.append(.keep(a[x - 1]))
                x -= 1
                y -= 1
            }
            if depth > 0 {
                if x == previousX {
                    edits.append(.insert(b[y - 1]))
                } else {
                    edits.append(.delete(a[x - 1]))
                }
                x = previousX
                y = previousY
            }
        }
        return reorderingChanges(edits.reversed())
    }

    /// Within each run of changes, deletions first, as `diff -u` prints them.
    private static func reorderingChanges(_ edits: [Edit]) -> [Edit] {
        var result: [Edit] = []
        var deletions: [Edit] = []
        var insertions: [Edit] = []
        func flush() {
            result += deletions
            result += insertions
            deletions = []
            insertions = []
        }
        for edit in edits {
            switch edit {
            case .keep:
                flush()
                result.append(edit)
            case .delete: deletions.append(edit)
            case .insert: insertions.append(edit)
            }
        }
        flush()
        return result
    }

    /// The unified diff of two texts with `---`/`+++` headers and hunks of `context` lines, or an empty string when
    /// they are equal.
    public static func render(
        old: String, new: String, oldName: String, newName: String, context: Int = 3
    ) -> String {
        let oldLines = lines(of: old)
        let newLines = lines(of: new)
        let script = edits(from: oldLines, to: newLines)
        guard script.contains(where: { if case .keep = $0 { return false } else { return true } }) else { return "" }
        var output = "--- \(oldName)\n+++ \(newName)\n"
        for hunk in hunks(script, context: context) {
            output += hunk
        }
        return output
    }

    private static func lines(of text: String) -> [String] {
        if text.isEmpty { return [] }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if text.hasSuffix("\n") { lines.removeLast() }
        return lines
    }

    /// Groups changes with their context into `@@ -a,b +c,d @@` hunks; nearby changes share a hunk.
    private static func hunks(_ script: [Edit], context: Int) -> [String] {
        // Positions (in the script) of changed lines.
        let changed = script.indices.filter { if case .keep = script[$0] { return false } else { return true } }
        guard let first = changed.first else { return [] }
        var ranges: [ClosedRange<Int>] = []
        var start = max(0, first - context)
        var end = min(script.count - 1, first + context)
        for index in changed.dropFirst() {
            if index - context <= end + 1 {
                end = min(script.count - 1, index + context)
            } else {
                ranges.append(start...end)
                start = max(0, index - context)
                end = min(script.count - 1, index + context)
            }
        }
        ranges.append(start...end)

        // Line numbers in each text at each script position.
        var oldLine = [Int](repeating: 0, count: script.count + 1)
        var newLine = [Int](repeating: 0, count: script.count + 1)
        for (index, edit) in script.enumerated() {
            oldLine[index + 1] = oldLine[index] + (edit.isInsert ? 0 : 1)
            newLine[index + 1] = newLine[index] + (edit.isDelete ? 0 : 1)
        }
        return ranges.map { range in
            let oldCount = oldLine[range.upperBound + 1] - oldLine[range.lowerBound]
            let newCount = newLine[range.upperBound + 1] - newLine[range.lowerBound]
            // diff -u numbers an empty range by the line before it.
            let oldStart = oldCount == 0 ? oldLine[range.lowerBound] : oldLine[range.lowerBound] + 1
            let newStart = newCount == 0 ? newLine[range.lowerBound] : newLine[range.lowerBound] + 1
            var text = "@@ -\(span(oldStart, oldCount)) +\(span(newStart, newCount)) @@\n"
            for edit in script[range] {
                switch edit {
                case .keep(let line): text += " \(line)\n"
                case .delete(let line): text += "-\(line)\n"
                case .insert(let line): text += "+\(line)\n"
                }
            }
            return text
        }
    }

    private static func span(_ start: Int, _ count: Int) -> String {
        count == 1 ? "\(start)" : "\(start),\(count)"
    }
}

extension UnifiedDiff.Edit {
    var isInsert: Bool {
        if case .insert = self { return true }
        return false
    }

    var isDelete: Bool {
        if case .delete = self { return true }
        return false
    }
}
