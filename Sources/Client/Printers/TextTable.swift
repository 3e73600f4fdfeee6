/// Rows of cells aligned in columns, as kubectl prints them: columns separated by three spaces, each as wide as
/// its widest cell, the last one not padded.
public struct TextTable: Sendable, Equatable {
    /// The header cells, upper case by convention (`NAME`, `READY`, `AGE`).
    public var headers: [String]
    /// The rows; a row shorter than the headers is padded with empty cells.
    public var rows: [[String]]
    /// Spaces between columns.
    public var gap: Int

    /// Creates a table.
    public init(headers: [String], rows: [[String]] = [], gap: Int = 3) {
        self.headers = headers
        self.rows = rows
        self.gap = gap
    }

    /// The width of every column: its widest cell, header included (in characters).
    public var columnWidths: [Int] {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() {
                if index < widths.count {
                    widths[index] = max(widths[index], cell.count)
                } else {
                    widths.append(cell.count)
                }
            }
        }
        return widths
    }

    /// The header line followed by one line per row, without trailing spaces.
    public func render(includeHeaders: Bool = true) -> [String] {
        let widths = columnWidths
        var lines: [String] = []
        if includeHeaders { lines.append(Self.line(headers, widths: widths, gap: gap)) }
        for row in rows { lines.append(Self.line(row, widths: widths, gap: gap)) }
        return lines
    }

    /// One line with cells padded to `widths` (a cell wider than its column pushes the rest right).
    public static func line(_ cells: [String], widths: [Int], gap: Int = 3) -> String {
        var text = ""
        let count = max(cells.count, widths.count)
        for index in 0..<count {
            let cell = index < cells.count ? cells[index] : ""
            text += cell
            if index < count - 1 {
                let width = index < widths.count ? widths[index] : cell.count
                text += String(repeating: " ", count: max(0, width - cell.count) + gap)
            }
        }
        while text.hasSuffix(" ") { text.removeLast() }
        return text
    }
}
