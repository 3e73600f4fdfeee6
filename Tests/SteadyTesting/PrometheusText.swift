import Foundation

/// A parsed Prometheus text exposition (format 0.0.4), for tests that scrape `/metrics`.
///
/// Strict enough that a malformed exposition fails a test: every sample must belong to a family declared with
/// `# TYPE` before it, label values must be quoted, and values must be numbers.
public struct PrometheusText: Sendable {
    /// One sample line.
    public struct Sample: Sendable, Equatable {
        /// The sample's name (a histogram's samples end in `_bucket`, `_sum` and `_count`).
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    /// A metric family: its `# TYPE`, `# HELP` and samples.
    public struct Family: Sendable {
        public var name: String
        public var type: String
        public var help: String?
        public var samples: [Sample] = []
    }

    /// A line that is not valid exposition text.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// The families by name.
    public private(set) var families: [String: Family] = [:]

    /// Parses `text`.
    public init(_ text: String) throws(ParseError) {
        var help: [String: String] = [:]
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            let number = offset + 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true).map(String.init)
                guard parts.count >= 3 else { continue }  // a plain comment
                if parts[1] == "HELP" {
                    help[parts[2]] = parts.count > 3 ? parts[3] : ""
                    families[parts[2]]?.help = help[parts[2]]
                } else if parts[1] == "TYPE" {
                    guard parts.count == 4,
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3])
                    else { throw ParseError(line: number, message: "bad TYPE line: \(line)") }
                    guard families[parts[2]] == nil else {
                        throw ParseError(line: number, message: "\(parts[2]) declared twice")
                    }
                    families[parts[2]] = Family(name: parts[2], type: parts[3], help: help[parts[2]])
                }
                continue
            }
            let sample = try Self.sample(line, number: number)
            guard let family = family(of: sample.name) else {
                throw ParseError(line: number, message: "sample \(sample.name) has no # TYPE before it")
            }
            families[family]?.samples.append(sample)
        }
    }

    /// The family a sample name belongs to: itself, or a histogram or summary it is a part of.
    private func family(of name: String) -> String? {
        if families[name] != nil { return name }
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if let family = families[base], family.type == "histogram" || family.type == "summary" { return base }
        }
        return nil
    }

    /// The value of the sample named `name` whose labels include `labels`; nil if there is none, and nil if
    /// several match (a test should name the one it means).
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples(name).filter { sample in labels.allSatisfy { sample.labels[$0.key] == $0.value } }
        return matching.count == 1 ? matching[0].value : nil
    }

    /// Every sample named `name`.
    public func samples(_ name: String) -> [Sample] {
        guard let family = family(of: name) else { return [] }
        return families[family]?.samples.filter { $0.name == name } ?? []
    }

    private static func sample(_ line: String, number: Int) throws(ParseError) -> Sample {
        var scalars = Substring(line)
        let name = String(scalars.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" })
        guard let first = name.first, !first.isNumber else {
            throw ParseError(line: number, message: "bad metric name: \(line)")
        }
        scalars = scalars.dropFirst(name.count)
        var labels: [String: String] = [:]
        if scalars.first == "{" {
            scalars = scalars.dropFirst()
            while scalars.first != "}" {
                let key = String(scalars.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                scalars = scalars.dropFirst(key.count)
                guard !key.isEmpty, scalars.hasPrefix("=\"") else {
                    throw ParseError(line: number, message: "bad label in: \(line)")
                }
                scalars = scalars.dropFirst(2)
                var value = ""
                while true {
                    guard let character = scalars.popFirst() else {
                        throw ParseError(line: number, message: "unterminated label value in: \(line)")
                    }
                    if character == "\"" { break }
                    if character == "\\" {
                        switch scalars.popFirst() {
                        case "n": value.append("\n")
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        default: throw ParseError(line: number, message: "bad escape in: \(line)")
                        }
                    } else {
                        value.append(character)
                    }
                }
                guard labels.updateValue(value, forKey: key) == nil else {
                    throw ParseError(line: number, message: "label \(key) twice in: \(line)")
                }
                if scalars.first == "," { scalars = scalars.dropFirst() }
            }
            scalars = scalars.dropFirst()
        }
        let fields = scalars.split(separator: " ")
        guard (1...2).contains(fields.count), let value = Self.number(fields[0]) else {
            throw ParseError(line: number, message: "bad value in: \(line)")
        }
        return Sample(name: name, labels: labels, value: value)
    }

    private static func number(_ text: Substring) -> Double? {
        switch text {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }
}
