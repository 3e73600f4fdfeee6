import Foundation
import Yams

/// One manifest read from a file: a YAML or JSON document, or one item of a `kind: List` document.
public struct ManifestDocument: Sendable, Equatable {
    /// The file as given (display path); `<stdin>` for standard input.
    public var file: String
    /// The 1-based index of the document within the file, counting only non-empty documents.
    /// Items expanded from a `List` share the index of the list.
    public var index: Int
    /// The 1-based line where the document's content starts.
    public var line: Int
    /// The document's content.
    public var value: JSONValue

    /// Creates a document.
    public init(file: String, index: Int, line: Int, value: JSONValue) {
        self.file = file
        self.index = index
        self.line = line
        self.value = value
    }
}

/// A problem with a manifest, located as precisely as is known: file, document, line and column, field path.
public struct ManifestError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The file as given (display path).
    public var file: String
    /// The 1-based document index within the file, when the problem is in one document.
    public var document: Int?
    /// The 1-based line.
    public var line: Int?
    /// The 1-based column, counted in Unicode scalars.
    public var column: Int?
    /// The dotted path of the field at fault, such as `spec.serializeActions`.
    public var fieldPath: String?
    /// What is wrong.
    public var message: String

    /// Creates an error; leave out the parts that are not known.
    public init(
        file: String, document: Int? = nil, line: Int? = nil, column: Int? = nil, fieldPath: String? = nil,
        message: String
    ) {
        self.file = file
        self.document = document
        self.line = line
        self.column = column
        self.fieldPath = fieldPath
        self.message = message
    }

    /// `file: document N (line L): field.path: message`, or `file: line L, column C: message`,
    /// with whichever parts are present.
    public var description: String {
        var parts = [file]
        var position: [String] = []
        if let line { position.append("line \(line)") }
        if let column { position.append("column \(column)") }
        if let document {
            let at = position.isEmpty ? "" : " (\(position.joined(separator: ", ")))"
            parts.append("document \(document)\(at)")
        } else if !position.isEmpty {
            parts.append(position.joined(separator: ", "))
        }
        if let fieldPath, !fieldPath.isEmpty { parts.append(fieldPath) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }

    public var errorDescription: String? { description }
}

/// Reads manifests: YAML streams (or JSON) of Kubernetes-style documents, as `JSONValue`s with their positions.
public enum ManifestDocuments {
    /// The largest file, or text, that is read: larger input is refused rather than parsed.
    public static let maximumSize = 8 * 1024 * 1024

    /// File extensions read from directories (explicitly named files are read whatever their extension).
    public static let fileExtensions: Set<String> = ["yaml", "yml", "json"]

    /// Whether a file name has a manifest extension (`.yaml`, `.yml`, `.json`, in any case).
    public static func isManifestFileName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return false }
        return fileExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// Parses YAML (multi-document, `---` and `...`, anchors/aliases, merge keys `<<`) or JSON text into documents.
    ///
    /// Empty documents (only comments, or `null`) are skipped; a `kind: List` (or `*List`) document with `items`
    /// is replaced by its items. Scalars resolve as Yams resolves them (YAML 1.1 booleans such as `yes` included),
    /// except that timestamps stay strings; quoted scalars are always strings; non-string mapping keys become the
    /// string form of their value (`1` → `"1"`, `yes` → `"true"`).
    public static func parse(_ text: String, file: String) throws(ManifestError) -> [ManifestDocument] {
        let size = text.utf8.count
        guard size <= maximumSize else { throw tooLarge(file: file, size: size) }

        let parser: Parser
        do {
            // The encoding is given so that Yams does not consult the environment. Implicit tags are resolved
            // by NodeConverter, which skips Yams' regular expressions for scalars that can only be strings.
            parser = try Parser(yaml: text, resolver: .basic, constructor: .default, encoding: .utf8)
        } catch {
            throw yamlError(error, file: file)
        }

        // Aliases can make a small text expand enormously ("billion laughs"); without them a document has
        // fewer values than the text has bytes, so this budget only stops alias bombs.
        var converter = NodeConverter(file: file, budget: max(1_000_000, size))
        var documents: [ManifestDocument] = []
        var index = 0
        while true {
            let root: Node?
            do {
                root = try parser.nextRoot()
            } catch {
                throw yamlError(error, file: file, document: index + 1)
            }
            guard let root else { break }
            converter.document = index + 1
            let value = try converter.value(of: root)
            if value == .null { continue }
            index += 1
            let line = root.mark?.line ?? 1
            for item in expandingLists(value) {
                documents.append(ManifestDocument(file: file, index: index, line: line, value: item))
            }
        }
        return documents
    }

    /// Reads files, directories (only `*.yaml`, `*.yml` and `*.json`, recursively when asked, sorted by path) or
    /// `-` for standard input, in the order given.
    ///
    /// Entries whose names start with `.` are skipped inside directories (editor swap files, `..data` in
    /// Kubernetes volume mounts); symbolic links to files are read, those to directories are not descended into.
    public static func load(paths: [String], recursive: Bool) throws(ManifestError) -> [ManifestDocument] {
        var documents: [ManifestDocument] = []
        for path in paths {
            if path == "-" {
                documents += try parse(readText(FileHandle.standardInput, file: "<stdin>"), file: "<stdin>")
                continue
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ManifestError(file: path, message: "no such file or directory")
            }
            let files = isDirectory.boolValue ? try manifestFiles(in: path, recursive: recursive) : [path]
            for file in files {
                documents += try parse(readFile(file), file: file)
            }
        }
        return documents
    }

    /// The manifest files under `directory`, found as ``load(paths:recursive:)`` finds them (sorted by path), each
    /// with its text: for a caller that parses only the files that changed.
    public static func files(in directory: String, recursive: Bool) throws(ManifestError) -> [(file: String, text: String)] {
        var files: [(file: String, text: String)] = []
        for file in try manifestFiles(in: directory, recursive: recursive) {
            files.append((file, try readFile(file)))
        }
        return files
    }

    // MARK: - Files

    private static func manifestFiles(in directory: String, recursive: Bool) throws(ManifestError) -> [String] {
        let fileManager = FileManager.default
        var files: [String] = []
        var pending = [directory]
        while let current = pending.popLast() {
            let names: [String]
            do {
                names = try fileManager.contentsOfDirectory(atPath: current)
            } catch {
                throw ManifestError(file: current, message: "cannot list directory: \(reason(error))")
            }
            for name in names where !name.hasPrefix(".") {
                let path = current.hasSuffix("/") ? current + name : current + "/" + name
                // attributesOfItem does not follow links, fileExists does: so a linked directory is seen as a link.
                let type = (try? fileManager.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
                var isDirectory: ObjCBool = false
                guard fileManager.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
                if isDirectory.boolValue {
                    if recursive && type == .typeDirectory { pending.append(path) }
                } else if isManifestFileName(name) {
                    files.append(path)
                }
            }
        }
        return files.sorted()
    }

    private static func readFile(_ path: String) throws(ManifestError) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ManifestError(file: path, message: "cannot open file for reading")
        }
        defer { try? handle.close() }
        return try readText(handle, file: path)
    }

    /// Reads at most one byte more than the limit, so that a huge file or an endless pipe is refused quickly.
    private static func readText(_ handle: FileHandle, file: String) throws(ManifestError) -> String {
        var data = Data()
        do {
            while data.count <= maximumSize {
                guard let chunk = try handle.read(upToCount: maximumSize + 1 - data.count), !chunk.isEmpty else {
                    break
                }
                data.append(chunk)
            }
        } catch {
            throw ManifestError(file: file, message: "cannot read: \(reason(error))")
        }
        guard data.count <= maximumSize else { throw tooLarge(file: file, size: nil) }
        guard var text = String(data: data, encoding: .utf8) else {
            throw ManifestError(file: file, message: "not valid UTF-8 text")
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        return text
    }

    private static func tooLarge(file: String, size: Int?) -> ManifestError {
        let limit = "\(maximumSize / (1024 * 1024)) MiB"
        let actual = size.map { " (\($0) bytes)" } ?? ""
        return ManifestError(file: file, message: "file is larger than the \(limit) limit for manifests\(actual)")
    }

    private static func reason(_ error: any Error) -> String {
        (error as NSError).localizedFailureReason ?? error.localizedDescription
    }

    // MARK: - Lists

    /// A `List` (any kind ending in `List`) with an `items` array stands for its items, nested lists included.
    private static func expandingLists(_ value: JSONValue) -> [JSONValue] {
        guard let kind = value["kind"]?.stringValue, kind.hasSuffix("List"),
            let items = value["items"]?.arrayValue
        else { return [value] }
        return items.filter { !$0.isNull }.flatMap(expandingLists)
    }

    // MARK: - YAML errors

    /// - Parameter document: the document being read, named in errors about a mapping's content.
    private static func yamlError(_ error: any Error, file: String, document: Int? = nil) -> ManifestError {
        guard let error = error as? YamlError else {
            return ManifestError(file: file, message: "\(error)")
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = problem
            // libyaml's context says where the construct at fault began, which helps with unclosed quotes.
            if let context, !context.text.isEmpty {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            return ManifestError(file: file, line: mark.line, column: mark.column, message: message)
        case .reader(let problem, let offset, _, let yaml):
            let position = offset.flatMap { lineAndColumn(ofCharacterOffset: $0, in: yaml) }
            return ManifestError(file: file, line: position?.line, column: position?.column, message: problem)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            let noun = duplicates.count == 1 ? "key" : "keys"
            return ManifestError(
                file: file, document: document, line: context.mark.line, column: context.mark.column,
                message: "duplicate \(noun) \(names) in mapping"
            )
        default:
            return ManifestError(file: file, message: "\(error)")
        }
    }

    private static func lineAndColumn(ofCharacterOffset offset: Int, in text: String) -> (line: Int, column: Int)? {
        guard let end = text.index(text.startIndex, offsetBy: offset, limitedBy: text.endIndex) else { return nil }
        var line = 1
        var column = 1
        for scalar in text[..<end].unicodeScalars {
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}

/// Turns a Yams node tree into a `JSONValue`, resolving merge keys and counting values against a budget.
private struct NodeConverter {
    let file: String
    var budget: Int
    var document = 1

    init(file: String, budget: Int) {
        self.file = file
        self.budget = budget
    }

    mutating func value(of node: Node) throws(ManifestError) -> JSONValue {
        budget -= 1
        guard budget >= 0 else {
            throw error("document expands to too many values (aliases nested too deeply?)", at: node)
        }
        switch node {
        case .scalar(let scalar):
            return Self.value(of: scalar, tag: Self.tagName(of: scalar, isKey: false))
        case .sequence(let sequence):
            var items: [JSONValue] = []
            items.reserveCapacity(sequence.count)
            for item in sequence {
                items.append(try value(of: item))
            }
            return .array(items)
        case .mapping(let mapping):
            return .object(try members(of: mapping))
        case .alias:
            // Yams' parser inlines aliased nodes; an alias node would only come from a hand-built tree.
            throw error("unresolved alias", at: node)
        }
    }

    /// YAML merge (`<<`): explicit keys win over merged ones, and in a sequence of maps earlier maps win.
    private mutating func members(of mapping: Node.Mapping) throws(ManifestError) -> [String: JSONValue] {
        var members: [String: JSONValue] = [:]
        var merges: [Node] = []
        for (key, value) in mapping {
            if case .scalar(let scalar) = key, Self.tagName(of: scalar, isKey: true) == .merge {
                merges.append(value)
                continue
            }
            let name = try keyString(key)
            guard members[name] == nil else {
                throw error("duplicate key \"\(name)\" in mapping", at: key)
            }
            members[name] = try self.value(of: value)
        }
        for merge in merges {
            let sources: [Node]
            switch merge {
            case .mapping: sources = [merge]
            case .sequence(let sequence): sources = Array(sequence)
            default: throw error("merge key \"<<\" needs a mapping or a sequence of mappings", at: merge)
            }
            for source in sources {
                guard case .object(let merged) = try value(of: source) else {
                    throw error("merge key \"<<\" needs a mapping or a sequence of mappings", at: source)
                }
                for (name, value) in merged where members[name] == nil {
                    members[name] = value
                }
            }
        }
        return members
    }

    private mutating func keyString(_ key: Node) throws(ManifestError) -> String {
        guard case .scalar(let scalar) = key else {
            throw error("mapping keys must be scalars, not a \(key.mapping != nil ? "mapping" : "sequence")", at: key)
        }
        switch Self.value(of: scalar, tag: Self.tagName(of: scalar, isKey: true)) {
        case .string(let text): return text
        case .int(let number): return String(number)
        case .double(let number): return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        case .array, .object: return scalar.string
        }
    }

    /// Follows Yams' constructor for bool, int, float and null; everything else, timestamps included, is a string.
    private static func value(of scalar: Node.Scalar, tag: Tag.Name) -> JSONValue {
        switch tag {
        case .null:
            return NSNull.construct(from: scalar) != nil ? .null : .string(scalar.string)
        case .bool:
            return Bool.construct(from: scalar).map(JSONValue.bool) ?? .string(scalar.string)
        case .int:
            if let number = Int64.construct(from: scalar) { return .int(number) }
            // Too large for 64 bits: keep the magnitude, as JSON decoders do.
            return Double.construct(from: scalar).map(JSONValue.double) ?? .string(scalar.string)
        case .float:
            return Double.construct(from: scalar).map(JSONValue.double) ?? .string(scalar.string)
        default:
            return .string(scalar.string)
        }
    }

    /// The scalar's tag, resolving an implicit one as Yams' default resolver would.
    ///
    /// The parser runs with the basic resolver, so an implicit tag is still empty here, except on mapping keys,
    /// which Yams hashes (and so resolves, to `str`) while checking for duplicates: a plain key tagged `str` is
    /// taken as implicit.
    private static func tagName(of scalar: Node.Scalar, isKey: Bool) -> Tag.Name {
        let raw = scalar.tag.rawValue
        let isImplicit = raw.isEmpty || (isKey && scalar.style == .plain && raw == Tag.Name.str.rawValue)
        return isImplicit ? implicitTag(of: scalar.string) : Tag.Name(rawValue: raw)
    }

    /// Only empty scalars and those starting with one of these can be anything but a string under YAML 1.1's
    /// rules (null, bools, ints, floats, merge, timestamps, value); the rest skip the regular expressions.
    private static let nonStringStarts = Set("0123456789+-.~<=nNyYtTfFoO".utf8)

    private static func implicitTag(of text: String) -> Tag.Name {
        guard let first = text.utf8.first else { return .null }
        guard nonStringStarts.contains(first) else { return .str }
        return Resolver.default.resolveTag(of: .scalar(Node.Scalar(text)))
    }

    private func error(_ message: String, at node: Node) -> ManifestError {
        ManifestError(
            file: file, document: document, line: node.mark?.line, column: node.mark?.column, message: message
        )
    }
}
