import Resources

/// Writes JSON values as kubectl does for `-o json`: keys sorted, four-space indentation, `"key": value`.
public enum JSONOutput {
    /// The indented JSON text of `value`, ending in a newline.
    public static func render(_ value: JSONValue) -> String {
        var text = ""
        write(value, indent: 0, into: &text)
        return text + "\n"
    }

    private static func write(_ value: JSONValue, indent: Int, into text: inout String) {
        switch value {
        case .object(let members):
            if members.isEmpty {
                text += "{}"
                return
            }
            text += "{\n"
            let keys = members.keys.sorted()
            for (index, key) in keys.enumerated() {
                text += String(repeating: " ", count: (indent + 1) * 4)
                text += quoted(key) + ": "
                write(members[key] ?? .null, indent: indent + 1, into: &text)
                text += index < keys.count - 1 ? ",\n" : "\n"
            }
            text += String(repeating: " ", count: indent * 4) + "}"
        case .array(let items):
            if items.isEmpty {
                text += "[]"
                return
            }
            text += "[\n"
            for (index, item) in items.enumerated() {
                text += String(repeating: " ", count: (indent + 1) * 4)
                write(item, indent: indent + 1, into: &text)
                text += index < items.count - 1 ? ",\n" : "\n"
            }
            text += String(repeating: " ", count: indent * 4) + "]"
        case .string(let string):
            text += quoted(string)
        default:
            text += value.jsonString()
        }
    }

    /// A JSON string literal; control characters are escaped, everything else written as is.
    static func quoted(_ string: String) -> String {
        var result = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{08}": result += "\\b"
            case "\u{0C}": result += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
