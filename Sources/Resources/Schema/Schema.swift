/// The shape of a field or an object, as recorded from the Swift types and published as OpenAPI.
public struct Schema: Sendable, Equatable {
    public enum Shape: Sendable, Equatable {
        case string
        case integer
        case number
        case boolean
        case array
        case map
        case object
        /// Any JSON (`x-kubernetes-preserve-unknown-fields`).
        case any
        /// An integer or a string such as `20%` (`x-kubernetes-int-or-string`).
        case integerOrString
    }

    /// One named member of an object schema, in declaration order.
    public struct Property: Sendable, Equatable {
        public var name: String
        public var schema: Schema
        public var isRequired: Bool
    }

    public var shape: Shape
    public var description: String?
    public var format: String?
    public var pattern: String?
    public var allowedValues: [String]?
    public var properties: [Property]
    /// A valid value to use as a placeholder, for types whose decoding validates their input.
    public var exampleValue: JSONValue?
    /// The element schema of an array, or the value schema of a map.
    private var elementBox: [Schema]

    public init(
        _ shape: Shape, description: String? = nil, format: String? = nil, pattern: String? = nil,
        allowedValues: [String]? = nil, properties: [Property] = [], element: Schema? = nil,
        example: JSONValue? = nil
    ) {
        self.exampleValue = example
        self.shape = shape
        self.description = description
        self.format = format
        self.pattern = pattern
        self.allowedValues = allowedValues
        self.properties = properties
        self.elementBox = element.map { [$0] } ?? []
    }

    public var element: Schema? { elementBox.first }

    public func property(_ name: String) -> Property? { properties.first { $0.name == name } }

    public static func string(description: String? = nil, format: String? = nil, pattern: String? = nil) -> Schema {
        Schema(.string, description: description, format: format, pattern: pattern)
    }

    public static func array(of element: Schema) -> Schema { Schema(.array, element: element) }
    public static func map(of element: Schema) -> Schema { Schema(.map, element: element) }

    /// A minimal JSON value that satisfies this schema, used to build placeholders while recording.
    public var example: JSONValue {
        if let exampleValue { return exampleValue }
        return switch shape {
        case .string: JSONValue.string(allowedValues?.first ?? "")
        case .integer, .integerOrString: JSONValue.int(0)
        case .number: JSONValue.double(0)
        case .boolean: JSONValue.bool(false)
        case .array: JSONValue.array([])
        case .map, .any: JSONValue.object([:])
        case .object:
            JSONValue.object(Dictionary(uniqueKeysWithValues: properties.filter(\.isRequired).map { ($0.name, $0.schema.example) }))
        }
    }

    /// The same schema with a description, for documenting a field where it is used.
    public func described(_ text: String?) -> Schema {
        var copy = self
        if let text { copy.description = text }
        return copy
    }
}

/// A type that states its own schema instead of having it recorded from its `Decodable` conformance.
public protocol SchemaProviding: Decodable {
    static var schema: Schema { get }
}

/// A closed set of string values, published as an OpenAPI `enum`.
public protocol SchemaEnum: SchemaProviding, CaseIterable, RawRepresentable, Codable, Sendable, Hashable
where RawValue == String {}

extension SchemaEnum {
    public static var schema: Schema {
        Schema(.string, allowedValues: allCases.map(\.rawValue))
    }

    /// Rejects unknown values with the list of allowed ones.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let value = Self(rawValue: raw) else {
            let allowed = Self.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            var message = "unsupported value \"\(raw)\": must be one of \(allowed)"
            if let suggestion = Suggestion.nearest(to: raw, among: Self.allCases.map(\.rawValue)) {
                message += "; did you mean \(suggestion)?"
            }
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: message))
        }
        self = value
    }
}

/// Field descriptions that the recorder attaches to a type's properties (shown by `kubectl explain`).
public protocol FieldDocumented {
    static var fieldDescriptions: [String: String] { get }
}
