/// A duration written as in Kubernetes and Go: `250ms`, `90s`, `5m`, `1h30m`.
public struct DurationString: Codable, Sendable, Hashable, SchemaProviding, CustomStringConvertible {
    public let text: String
    public let seconds: Double

    public init(_ text: String) throws(FieldError) {
        guard let seconds = DurationString.parse(text) else {
            throw FieldError(
                path: "",
                message: "invalid duration \"\(text)\": use numbers with units ms, s, m or h, like 90s, 5m or 1h30m")
        }
        self.text = text
        self.seconds = seconds
    }

    public init(seconds: Double) {
        self.seconds = seconds
        self.text = seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(Int(seconds * 1000))ms"
    }

    public var duration: Duration { .milliseconds(Int64(seconds * 1000)) }
    public var description: String { text }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    public static var schema: Schema {
        Schema(
            .string, description: "A duration such as 90s, 5m or 1h30m.",
            pattern: "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$", example: "1s")
    }

    static func parse(_ text: String) -> Double? {
        var total = 0.0
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isASCII && $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "ms": total += value / 1000
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            default: return nil
            }
        }
        return total
    }
}

/// A count or a percentage of a total, such as a rolling `batchSize` of `50` or `"20%"`.
public enum CountOrPercent: Codable, Sendable, Hashable, SchemaProviding {
    case count(Int)
    case percent(Int)

    /// The count this resolves to for `total` items, rounded up: at least 1 when total is positive (a batch size).
    public func resolve(total: Int) -> Int {
        switch self {
        case .count(let count): max(1, count)
        case .percent(let percent): max(1, (total * percent + 99) / 100)
        }
    }

    /// The count this allows out of `total` items, rounded down and possibly 0 (an error budget such as `maxErrors`).
    public func allowance(total: Int) -> Int {
        switch self {
        case .count(let count): max(0, count)
        case .percent(let percent): max(0, total * percent / 100)
        }
    }

    /// Whether this is `0` or `"0%"`, which a field such as `batchSize` refuses.
    public var isZero: Bool { self == .count(0) || self == .percent(0) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        func invalid(_ message: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: message))
        }
        if let count = try? container.decode(Int.self) {
            guard count >= 0 else { throw invalid("must not be negative, got \(count)") }
            self = .count(count)
            return
        }
        guard let text = try? container.decode(String.self) else {
            throw invalid("expected a count like 50 or a percentage like \"20%\"")
        }
        if text.hasSuffix("%"), let percent = Int(text.dropLast()), (0...100).contains(percent) {
            self = .percent(percent)
        } else if let count = Int(text), count >= 0 {
            self = .count(count)
        } else {
            throw invalid("invalid value \"\(text)\": expected a count like 50 or a percentage like \"20%\" (0-100%)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .count(let count): try container.encode(count)
        case .percent(let percent): try container.encode("\(percent)%")
        }
    }

    public static var schema: Schema {
        Schema(.integerOrString, description: "A count (50) or a percentage of the targets (\"20%\").", example: 1)
    }
}
