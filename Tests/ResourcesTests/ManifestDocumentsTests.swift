import Foundation
import Resources
import Testing

@Suite(.timeLimit(.minutes(5))) struct ManifestDocumentsTests {
    private func parse(_ text: String, file: String = "test.yaml") throws -> [ManifestDocument] {
        try ManifestDocuments.parse(text, file: file)
    }

    private func parseError(_ text: String, file: String = "test.yaml") -> ManifestError? {
        do {
            _ = try ManifestDocuments.parse(text, file: file)
            return nil
        } catch {
            return error
        }
    }

    @Test func multipleDocumentsWithStartAndEndMarkers() throws {
        let text = """
            apiVersion: v1
            kind: Route
            ...
            ---
            # second
            apiVersion: v1
            kind: Upstream
            ---
            kind: Third
            ...

            """
        let documents = try parse(text)
        #expect(documents.map(\.value["kind"]) == ["Route", "Upstream", "Third"])
        #expect(documents.map(\.index) == [1, 2, 3])
        #expect(documents.map(\.line) == [1, 6, 9])
        #expect(documents.allSatisfy { $0.file == "test.yaml" })
    }

    @Test func emptyDocumentsAreSkippedAndNotCounted() throws {
        let text = """
            # leading comment only
            ---
            ---
            null
            ---
            ~
            ---
            kind: A
            ---
            # comment


            ---
            kind: B
            ---

            """
        let documents = try parse(text)
        #expect(documents.map(\.value["kind"]) == ["A", "B"])
        #expect(documents.map(\.index) == [1, 2])
        #expect(documents.map(\.line) == [8, 14])
        #expect(try parse("").isEmpty)
        #expect(try parse("# nothing here\n").isEmpty)
    }

    @Test func anchorsAndAliases() throws {
        let text = """
            defaults: &defaults
              timeout: 5s
              retries: 3
            a: *defaults
            list:
              - &first one
              - *first

            """
        let value = try #require(try parse(text).first).value
        #expect(value["a"] == ["timeout": "5s", "retries": 3])
        #expect(value["list"] == ["one", "one"])
    }

    @Test func mergeKeysExplicitWinsAndEarlierMergeWins() throws {
        let text = """
            base: &base {x: 1, y: 2}
            more: &more {y: 3, z: 4}
            single:
              <<: *base
              x: 10
            several:
              <<: [*base, *more]
              w: 0
            nested:
              inner:
                <<: *more
                z: 40

            """
        let value = try #require(try parse(text).first).value
        #expect(value["single"] == ["x": 10, "y": 2])
        #expect(value["several"] == ["x": 1, "y": 2, "z": 4, "w": 0])
        #expect(value[path: ["nested", "inner"]] == ["y": 3, "z": 40])
        // A quoted "<<" is an ordinary key.
        #expect(try parse("'<<': 1\n").first?.value == ["<<": 1])
    }

    @Test func mergeOfNonMappingIsAnError() throws {
        let error = try #require(parseError("a: 1\nb:\n  <<: 5\n"))
        #expect(error.message.contains("merge"))
        #expect(error.line == 3)
    }

    @Test func listIsExpandedIntoItems() throws {
        let text = """
            kind: A
            ---
            apiVersion: v1
            kind: List
            items:
              - kind: B
                metadata: {name: b}
              - kind: C
            ---
            kind: RouteList
            items:
              - kind: D
            ---
            kind: E
            items: [1]
            ---
            kind: List
            items: []

            """
        let documents = try parse(text)
        #expect(documents.map(\.value["kind"]) == ["A", "B", "C", "D", "E"])
        #expect(documents.map(\.index) == [1, 2, 2, 3, 4])
        #expect(documents.map(\.line) == [1, 3, 3, 10, 14])
        #expect(documents[1].value[path: ["metadata", "name"]] == "b")
    }

    @Test func jsonInputIncludingList() throws {
        let text = """
            {
              "kind": "List",
              "items": [
                {"kind": "A", "spec": {"port": 8080, "ratio": 0.5, "on": true, "none": null, "url": "http://x/y"}},
                {"kind": "B", "spec": {"tags": ["a", "b"], "id": "007"}}
              ]
            }
            """
        let documents = try parse(text, file: "list.json")
        #expect(documents.count == 2)
        #expect(documents[0].value["spec"] == [
            "port": 8080, "ratio": 0.5, "on": true, "none": .null, "url": "http://x/y",
        ])
        #expect(documents[1].value[path: ["spec", "id"]] == "007")
        #expect(documents.allSatisfy { $0.index == 1 && $0.line == 1 && $0.file == "list.json" })
    }

    @Test func scalarsResolveLikeYamsAndQuotedStayStrings() throws {
        let text = """
            int: 123
            quotedInt: "123"
            singleQuoted: '123'
            float: 1.5
            exponent: 1e3
            bool: true
            yesBool: yes
            quotedBool: "true"
            null1: ~
            null2:
            quotedNull: "null"
            date: 2024-01-02
            hex: 0x1F
            big: 99999999999999999999
            plain: hello world
            block: |
              line one
              line two

            """
        let value = try #require(try parse(text).first).value
        #expect(value["int"] == .int(123))
        #expect(value["quotedInt"] == .string("123"))
        #expect(value["singleQuoted"] == .string("123"))
        #expect(value["float"] == .double(1.5))
        #expect(value["exponent"] == .double(1000))
        #expect(value["bool"] == .bool(true))
        #expect(value["yesBool"] == .bool(true))
        #expect(value["quotedBool"] == .string("true"))
        #expect(value["null1"] == .null)
        #expect(value["null2"] == .null)
        #expect(value["quotedNull"] == .string("null"))
        #expect(value["date"] == .string("2024-01-02"))
        #expect(value["hex"] == .int(31))
        #expect(value["big"] == .double(1e20))
        #expect(value["plain"] == .string("hello world"))
        #expect(value["block"] == .string("line one\nline two\n"))
    }

    @Test func nonStringKeysBecomeStrings() throws {
        let value = try #require(try parse("1: one\ntrue: yes\n2.5: x\nname: n\n").first).value
        #expect(value == ["1": "one", "true": true, "2.5": "x", "name": "n"])
    }

    @Test func keysThatCollideAsStringsAreDuplicates() throws {
        let error = try #require(parseError("kind: A\n---\n1: a\n\"1\": b\n"))
        #expect(error.message.contains("duplicate key \"1\""))
        #expect(error.document == 2)
        #expect(error.line == 3)
        #expect(error.description == "test.yaml: document 2 (line 3, column 1): duplicate key \"1\" in mapping")
    }

    @Test func syntaxErrorHasLineColumnAndProblem() throws {
        let error = try #require(parseError("kind: A\nspec:\n  a: b: c\n", file: "bad.yaml"))
        #expect(error.file == "bad.yaml")
        #expect(error.line == 3)
        #expect(error.column == 7)
        #expect(error.message.contains("mapping values are not allowed"))
        #expect(error.description.hasPrefix("bad.yaml: line 3, column 7: mapping values are not allowed"))
    }

    @Test func unclosedFlowSequenceNamesWhereItStarted() throws {
        let error = try #require(parseError("a: [1, 2\nb: 3\n"))
        #expect(error.line != nil && error.column != nil)
        #expect(error.message.contains("flow sequence at line 1, column 4"))
    }

    @Test func undefinedAliasIsAnError() throws {
        let error = try #require(parseError("a: 1\nb: *missing\n"))
        #expect(error.message.contains("undefined alias"))
        #expect(error.line == 2)
    }

    @Test func duplicateKeyNamesTheKey() throws {
        let error = try #require(parseError("metadata:\n  name: a\n  name: b\n", file: "dup.yaml"))
        #expect(error.message.contains("duplicate key \"name\""))
        #expect(error.line == 2)
        #expect(error.description.hasPrefix("dup.yaml: document 1 (line 2, column 3): duplicate key \"name\""))
    }

    @Test func aliasBombIsRefused() throws {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 {
            let previous = "*a\(level - 1)"
            let items = Array(repeating: previous, count: 10).joined(separator: ", ")
            text += "a\(level): &a\(level) [\(items)]\n"
        }
        let error = try #require(parseError(text))
        #expect(error.message.contains("too many values"))
    }

    @Test func oversizedTextIsRefused() throws {
        let text = String(repeating: "#", count: ManifestDocuments.maximumSize + 1)
        let error = try #require(parseError(text, file: "huge.yaml"))
        #expect(error.message.contains("8 MiB"))
        #expect(error.description.hasPrefix("huge.yaml: "))
    }

    @Test func errorDescriptionRendersPresentParts() {
        let full = ManifestError(
            file: "routes.yaml", document: 2, line: 14, fieldPath: "spec.serialiseActions",
            message: "unknown field; did you mean serializeActions?"
        )
        let expected = "routes.yaml: document 2 (line 14): spec.serialiseActions: "
            + "unknown field; did you mean serializeActions?"
        #expect(full.description == expected)
        #expect(ManifestError(file: "a.yaml", document: 3, message: "m").description == "a.yaml: document 3: m")
        let located = ManifestError(file: "a.yaml", line: 3, column: 5, message: "m")
        #expect(located.description == "a.yaml: line 3, column 5: m")
        #expect(ManifestError(file: "a.yaml", message: "m").description == "a.yaml: m")
        #expect(ManifestError(file: "a.yaml", fieldPath: "spec", message: "m").description == "a.yaml: spec: m")
    }
}

@Suite(.timeLimit(.minutes(5))) struct ManifestLoadingTests {
    /// A fresh directory with the given files (relative path → content), removed by the caller.
    private func makeTree(_ files: [String: String]) throws -> URL {
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("manifest-tests-\(UUID().uuidString)", isDirectory: true)
        for (path, content) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true
            )
            try Data(content.utf8).write(to: url)
        }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        return root
    }

    private let tree = [
        "b.yaml": "kind: B\n",
        "a.yml": "kind: A1\n---\nkind: A2\n",
        "c.json": #"{"kind": "C"}"#,
        "notes.txt": "kind: Ignored\n",
        "README.md": "# not a manifest\n",
        ".hidden.yaml": "kind: Hidden\n",
        "sub/d.yaml": "kind: D\n",
        "sub/deeper/e.YAML": "kind: E\n",
        ".git/f.yaml": "kind: InGit\n",
    ]

    @Test func directoryNonRecursiveIsSortedAndFiltered() throws {
        let root = try makeTree(tree)
        defer { try? FileManager.default.removeItem(at: root) }
        let documents = try ManifestDocuments.load(paths: [root.path], recursive: false)
        #expect(documents.map(\.value["kind"]) == ["A1", "A2", "B", "C"])
        #expect(documents.map(\.file) == ["a.yml", "a.yml", "b.yaml", "c.json"].map { root.path + "/" + $0 })
        #expect(documents.map(\.index) == [1, 2, 1, 1])
    }

    @Test func directoryRecursiveIncludesSubdirectoriesSorted() throws {
        let root = try makeTree(tree)
        defer { try? FileManager.default.removeItem(at: root) }
        let documents = try ManifestDocuments.load(paths: [root.path + "/"], recursive: true)
        #expect(documents.map(\.value["kind"]) == ["A1", "A2", "B", "C", "D", "E"])
        #expect(documents.last?.file == root.path + "/sub/deeper/e.YAML")
    }

    @Test func explicitFileIsReadWhateverItsExtension() throws {
        let root = try makeTree(tree)
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("notes.txt").path
        let documents = try ManifestDocuments.load(paths: [file, root.appendingPathComponent("b.yaml").path],
                                                   recursive: false)
        #expect(documents.map(\.value["kind"]) == ["Ignored", "B"])
        #expect(documents.first?.file == file)
    }

    @Test func missingPathIsAnErrorNamingIt() throws {
        do {
            _ = try ManifestDocuments.load(paths: ["/nonexistent/manifests"], recursive: false)
            Issue.record("expected an error")
        } catch {
            #expect(error.file == "/nonexistent/manifests")
            #expect(error.description.contains("no such file"))
        }
    }

    @Test func errorInLoadedFileNamesTheFile() throws {
        let root = try makeTree(["ok.yaml": "kind: A\n", "broken.yaml": "kind: A\n  bad: [\n"])
        defer { try? FileManager.default.removeItem(at: root) }
        do {
            _ = try ManifestDocuments.load(paths: [root.path], recursive: false)
            Issue.record("expected an error")
        } catch {
            #expect(error.file == root.path + "/broken.yaml")
            #expect(error.line == 2)
        }
    }

    @Test func oversizedFileIsRefused() throws {
        let root = try makeTree([:])
        defer { try? FileManager.default.removeItem(at: root) }
        let url = root.appendingPathComponent("big.yaml")
        try Data(repeating: UInt8(ascii: "#"), count: ManifestDocuments.maximumSize + 10).write(to: url)
        do {
            _ = try ManifestDocuments.load(paths: [root.path], recursive: false)
            Issue.record("expected an error")
        } catch {
            #expect(error.file == url.path)
            #expect(error.message.contains("8 MiB"))
        }
    }

    @Test func invalidUTF8IsRefused() throws {
        let root = try makeTree([:])
        defer { try? FileManager.default.removeItem(at: root) }
        let url = root.appendingPathComponent("bin.yaml")
        try Data([0x6B, 0x3A, 0x20, 0xFF, 0xFE, 0x0A]).write(to: url)
        do {
            _ = try ManifestDocuments.load(paths: [url.path], recursive: false)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("UTF-8"))
        }
    }
}
