import Resources

/// A `meta.k8s.io/v1 Table` as the server renders it (the columns of each kind are defined there alone), printed
/// as kubectl prints it: headers upper case, columns of priority above 0 only with `-o wide`.
public struct ServerTable: Sendable, Equatable {
    /// One column definition.
    public struct Column: Sendable, Equatable {
        /// The column's name (`Name`, `Ready`, `Age`, ...).
        public var name: String
        /// 0 for the default columns; more for those only `-o wide` shows.
        public var priority: Int
    }

    /// One row: an object's cells, in column order, and its name and resourceVersion.
    public struct Row: Sendable, Equatable {
        /// Every cell as text, `<none>` for a null one.
        public var cells: [String]
        /// `metadata.name` of the object.
        public var name: String
        /// `metadata.resourceVersion` of the object, when the server sent it.
        public var resourceVersion: String?
    }

    /// The column definitions.
    public var columns: [Column]
    /// The rows.
    public var rows: [Row]
    /// `metadata.resourceVersion` of the table: the list's, to watch from.
    public var resourceVersion: String

    /// Reads a Table response.
    /// - Throws: ``APIClientError`` with code ``APIClientError/Code/invalidResponse`` when it is not a Table.
    public init(_ value: JSONValue, server: String = "") throws(APIClientError) {
        guard value["kind"]?.stringValue == "Table", let definitions = value["columnDefinitions"]?.arrayValue else {
            throw APIClientError(
                code: .invalidResponse, message: "the server at \(server) did not answer with a Table", server: server)
        }
        columns = definitions.map { definition in
            Column(
                name: definition["name"]?.stringValue ?? "",
                priority: Int(definition["priority"]?.intValue ?? 0))
        }
        rows = (value["rows"]?.arrayValue ?? []).map { row in
            let metadata = row["object"]?["metadata"]
            return Row(
                cells: (row["cells"]?.arrayValue ?? []).map(Self.text),
                name: metadata?["name"]?.stringValue ?? "",
                resourceVersion: metadata?["resourceVersion"]?.stringValue)
        }
        resourceVersion = value["metadata"]?["resourceVersion"]?.stringValue ?? ""
    }

    /// The indices of the columns shown: all with `wide`, else those of priority 0.
    private func shown(wide: Bool) -> [Int] {
        columns.indices.filter { wide || columns[$0].priority == 0 }
    }

    /// The header cells, upper case.
    public func headers(wide: Bool) -> [String] {
        shown(wide: wide).map { columns[$0].name.uppercased() }
    }

    /// The cells of `row` that are shown.
    public func cells(of row: Row, wide: Bool) -> [String] {
        shown(wide: wide).map { $0 < row.cells.count ? row.cells[$0] : "" }
    }

    /// The rows as text, with the names prefixed by `namePrefix` (`route.steady.dev/`) when listing several kinds.
    public func textTable(wide: Bool, namePrefix: String = "") -> TextTable {
        let nameColumn = shown(wide: wide).firstIndex { columns[$0].name == "Name" }
        return TextTable(
            headers: headers(wide: wide),
            rows: rows.map { row in
                var cells = cells(of: row, wide: wide)
                if let nameColumn, !namePrefix.isEmpty { cells[nameColumn] = namePrefix + cells[nameColumn] }
                return cells
            })
    }

    /// A cell as kubectl prints it: strings as they are, numbers and booleans in their JSON form, null as `<none>`.
    static func text(_ cell: JSONValue) -> String {
        switch cell {
        case .null: return "<none>"
        case .string(let text): return text
        default: return cell.jsonString()
        }
    }
}
