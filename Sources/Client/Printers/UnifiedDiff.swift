/// A line-based diff and its rendering in the unified format of `diff -u`.
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

    /// The shortest edit script turning `old` into `new` (the standard library's `difference(from:)`, Myers'
    /// algorithm), deletions before insertions within a change, as `diff -u` prints them.
    public static func edits(from old: [String], to new: [String]) -> [Edit] {
        var removed: Set<Int> = []
        var inserted: Set<Int> = []
        for change in new.difference(from: old) {
            switch change {
            case .remove(let offset, _, _): removed.insert(offset)
            case .insert(let offset, _, _): inserted.insert(offset)
            }
        }
        var edits: [Edit] = []
        edits.reserveCapacity(old.count + inserted.count)
        var oldIndex = 0
        var newIndex = 0
        while oldIndex < old.count || newIndex < new.count {
            if oldIndex < old.count && removed.contains(oldIndex) {
                edits.append(.delete(old[oldIndex]))
                oldIndex += 1
            } else if newIndex < new.count && inserted.contains(newIndex) {
                edits.append(.insert(new[newIndex]))
                newIndex += 1
            } else {
                // Neither removed nor inserted: the same line in both texts.
                edits.append(.keep(old[oldIndex]))
                oldIndex += 1
                newIndex += 1
            }
        }
        return edits
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
