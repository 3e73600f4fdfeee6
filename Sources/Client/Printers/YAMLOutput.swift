import Foundation
import Resources
import Yams

/// Writes JSON values as YAML the way kubectl does: keys sorted, sequences not indented under their key,
/// multi-line strings as literal blocks, strings that would read as another type quoted.
public enum YAMLOutput {
    /// The YAML text of `value`, ending in a newline.
    public static func render(_ value: JSONValue) -> String {
        do {
            return try Yams.serialize(
                node: node(value), width: -1, allowUnicode: true, newLineScalarStyle: .literal)
        } catch {
            // The emitter only fails on invalid event sequences, which node(_:) never builds; JSON is valid YAML.
            return JSONOutput.render(value)
        }
    }

    /// Several values as a YAML stream, separated by `---`.
    public static func render(documents: [JSONValue]) -> String {
        documents.map(render).joined(separator: "---\n")
    }

    static func node(_ value: JSONValue) -> Node {
        switch value {
        case .null:
            return Node("null", Tag(.null))
        case .bool(let flag):
            return Node.scalar(flag.represented())
        case .int(let number):
            return Node(String(number), Tag(.int))
        case .double(let number):
            return Node.scalar(number.represented())
        case .string(let text):
            // Strings that would read as another type (`"4"`, `"true"`, timestamps) are double-quoted, as kubectl
            // quotes them.
            var scalar = text.represented()
            if scalar.style == .singleQuoted {
                scalar.style = .doubleQuoted
            } else if text.contains("\n") {
                // Templates and scripts read best as literal blocks; the emitter falls back when it cannot.
                scalar.style = .literal
            }
            return Node.scalar(scalar)
        case .array(let items):
            return Node.sequence(Node.Sequence(items.map(node)))
        case .object(let members):
            let pairs = members.keys.sorted().map { key in
                (node(.string(key)), node(members[key] ?? .null))
            }
            return Node.mapping(Node.Mapping(pairs))
        }
    }
}
