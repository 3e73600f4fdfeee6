import Testing

@testable import Client

@Suite(.timeLimit(.minutes(2))) struct UnifiedDiffTests {
    /// Applies an edit script to the old lines; it must give the new ones.
    func replay(_ edits: [UnifiedDiff.Edit]) -> (old: [String], new: [String]) {
        var old: [String] = []
        var new: [String] = []
        for edit in edits {
            switch edit {
            case .keep(let line):
                old.append(line)
                new.append(line)
            case .delete(let line): old.append(line)
            case .insert(let line): new.append(line)
            }
        }
        return (old, new)
    }

    @Test func editScriptsAreShortestAndReproduceBothTexts() {
        let cases: [([String], [String], Int)] = [
            (["a", "b", "c", "a", "b", "b", "a"], ["c", "b", "a", "b", "a", "c"], 5),  // Myers' paper: D = 5
            ([], ["x", "y"], 2),
            (["x", "y"], [], 2),
            (["same"], ["same"], 0),
            (["a", "b", "c"], ["a", "x", "c"], 2),
        ]
        for (old, new, distance) in cases {
            let edits = UnifiedDiff.edits(from: old, to: new)
            let replayed = replay(edits)
            #expect(replayed.old == old)
            #expect(replayed.new == new)
            let changes = edits.filter { if case .keep = $0 { return false } else { return true } }.count
            #expect(changes == distance, "\(old) → \(new)")
        }
    }

    @Test func randomInputsRoundTrip() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let old = (0..<Int.random(in: 0..<30, using: &generator)).map { _ in ["a", "b", "c", "d"].randomElement() ?? "a" }
            let new = (0..<Int.random(in: 0..<30, using: &generator)).map { _ in ["a", "b", "c", "e"].randomElement() ?? "a" }
            let replayed = replay(UnifiedDiff.edits(from: old, to: new))
            #expect(replayed.old == old)
            #expect(replayed.new == new)
        }
    }

    @Test func rendersLikeDiffU() {
        let old = (1...10).map { "line \($0)" }.joined(separator: "\n") + "\n"
        var newLines = (1...10).map { "line \($0)" }
        newLines[4] = "line five"
        newLines.append("line 11")
        let new = newLines.joined(separator: "\n") + "\n"
        let text = UnifiedDiff.render(old: old, new: new, oldName: "live/x", newName: "merged/x")
        #expect(
            text == """
                --- live/x
                +++ merged/x
                @@ -2,9 +2,10 @@
                 line 2
                 line 3
                 line 4
                -line 5
                +line five
                 line 6
                 line 7
                 line 8
                 line 9
                 line 10
                +line 11

                """)
    }

    @Test func distantChangesGetSeparateHunks() {
        let old = (1...20).map { "l\($0)" }.joined(separator: "\n")
        var lines = (1...20).map { "l\($0)" }
        lines[1] = "two"
        lines[18] = "nineteen"
        let text = UnifiedDiff.render(old: old, new: lines.joined(separator: "\n"), oldName: "a", newName: "b")
        #expect(text.contains("@@ -1,5 +1,5 @@\n"))
        #expect(text.contains("@@ -16,5 +16,5 @@\n"))
    }

    @Test func creationAndEqualTexts() {
        #expect(UnifiedDiff.render(old: "a\n", new: "a\n", oldName: "a", newName: "b") == "")
        let created = UnifiedDiff.render(old: "", new: "a\nb\n", oldName: "live/x", newName: "merged/x")
        #expect(created == "--- live/x\n+++ merged/x\n@@ -0,0 +1,2 @@\n+a\n+b\n")
    }
}

@Suite(.timeLimit(.minutes(2))) struct UnifiedDiffOrderTests {
    @Test func deletionsComeBeforeInsertionsWithinAChange() {
        let edits = UnifiedDiff.edits(from: ["k", "a", "b", "k2"], to: ["k", "c", "d", "k2"])
        #expect(edits == [.keep("k"), .delete("a"), .delete("b"), .insert("c"), .insert("d"), .keep("k2")])
    }
}
