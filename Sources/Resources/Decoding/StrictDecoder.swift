import Foundation

/// Decodes `Decodable` types from a `JSONValue`, rejecting unknown fields and wrong types with field paths.
///
/// Synthesized `Decodable` conformances ask for every property they know (`decodeIfPresent` for
/// optionals), so the keys a container was asked for are exactly the fields the type declares: the rest
/// of the object's keys are unknown fields, and the asked-for keys are the candidates for "did you mean".
public struct StrictDecoder {
    public init() {}

    /// Decodes `type`, reporting the first type error, or else every unknown field.
    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws(ValidationFailure) -> T {
        let tracker = FieldTracker()
        let decoder = JSONValueDecoder(value: value, codingPath: [], tracker: tracker)
        let decoded: T
        do {
            decoded = try T(from: decoder)
        } catch let error as DecodingError {
            // Unknown fields are only certain once decoding has finished, so they are not reported here.
            throw ValidationFailure([FieldError(decoding: error)])
        } catch let failure as ValidationFailure {
            throw failure
        } catch {
            throw ValidationFailure([FieldError(path: "", message: "\(error)")])
        }
        let unknown = tracker.unknownFields()
        if !unknown.isEmpty { throw ValidationFailure(unknown) }
        return decoded
    }
}

extension FieldError {
    /// Translates a `DecodingError` into the user's terms: a field path and what was expected.
    init(decoding error: DecodingError) {
        switch error {
        case .keyNotFound(let key, let context):
            let path = FieldPath.join(FieldPath.render(context.codingPath), key.stringValue)
            self.init(path: path, reason: .required, message: "required field is missing")
        case .typeMismatch(let type, let context):
            self.init(
                path: FieldPath.render(context.codingPath), reason: .typeMismatch,
                message: context.debugDescription.isEmpty ? "expected \(jsonTypeName(type))" : context.debugDescription)
        case .valueNotFound(let type, let context):
            self.init(
                path: FieldPath.render(context.codingPath), reason: .required,
                message: "expected \(jsonTypeName(type)), got null")
        case .dataCorrupted(let context):
            self.init(path: FieldPath.render(context.codingPath), reason: .invalid, message: context.debugDescription)
        @unknown default:
            self.init(path: "", message: "\(error)")
        }
    }
}

/// The JSON name of a Swift type, for messages such as "expected string, got integer".
func jsonTypeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "string"
    case is Bool.Type: "boolean"
    case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type: "integer"
    case is Double.Type, is Float.Type: "number"
    default:
        if type is any SchemaArrayType.Type { "array" } else { "object" }
    }
}

/// Records, per object container, which keys the decoded type asked for.
final class FieldTracker: @unchecked Sendable {
    // Only used synchronously by one decode call on one thread; never shared.
    private var containers: [(path: String, keys: [String], asked: Set<String>)] = []

    func register(path: String, keys: [String]) -> Int {
        containers.append((path, keys, []))
        return containers.count - 1
    }

    func markAsked(_ key: String, in container: Int) {
        containers[container].asked.insert(key)
    }

    func unknownFields() -> [FieldError] {
        var errors: [FieldError] = []
        for container in containers {
            for key in container.keys.sorted() where !container.asked.contains(key) {
                var message = "unknown field"
                if let suggestion = Suggestion.nearest(to: key, among: container.asked) {
                    message += "; did you mean \(suggestion)?"
                }
                errors.append(
                    FieldError(path: FieldPath.join(container.path, key), reason: .unknownField, message: message))
            }
        }
        return errors
    }
}

struct JSONValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let tracker: FieldTracker
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw typeMismatch(expected: "object", path: codingPath, value: value)
        }
        let index = tracker.register(path: FieldPath.render(codingPath), keys: Array(members.keys))
        return KeyedDecodingContainer(
            KeyedJSONContainer<Key>(members: members, codingPath: codingPath, tracker: tracker, trackerIndex: index))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else {
            throw typeMismatch(expected: "array", path: codingPath, value: value)
        }
        return UnkeyedJSONContainer(items: items, codingPath: codingPath, tracker: tracker)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleJSONContainer(value: value, codingPath: codingPath, tracker: tracker)
    }
}

struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

func typeMismatch(expected: String, path: [any CodingKey], value: JSONValue) -> DecodingError {
    .typeMismatch(
        Any.self,
        .init(codingPath: path, debugDescription: "expected \(expected), got \(value.typeName)"))
}

/// Decodes a primitive, refusing the silent conversions JSON decoders usually allow.
func decodePrimitive<T>(_ type: T.Type, from value: JSONValue, path: [any CodingKey]) throws -> T {
    switch type {
    case is String.Type:
        if case .string(let text) = value, let result = text as? T { return result }
        throw typeMismatch(expected: "string", path: path, value: value)
    case is Bool.Type:
        if case .bool(let flag) = value, let result = flag as? T { return result }
        throw typeMismatch(expected: "boolean", path: path, value: value)
    case is Double.Type:
        if let number = value.doubleValue, let result = number as? T { return result }
        throw typeMismatch(expected: "number", path: path, value: value)
    case is Int.Type:
        if let number = value.intValue, let result = Int(exactly: number) as? T { return result }
        throw typeMismatch(expected: "integer", path: path, value: value)
    case is Int64.Type:
        if let number = value.intValue, let result = number as? T { return result }
        throw typeMismatch(expected: "integer", path: path, value: value)
    case is Int32.Type:
        if let number = value.intValue, let narrow = Int32(exactly: number), let result = narrow as? T { return result }
        throw typeMismatch(expected: "32-bit integer", path: path, value: value)
    default:
        throw DecodingError.typeMismatch(
            T.self, .init(codingPath: path, debugDescription: "unsupported type \(T.self)"))
    }
}

struct KeyedJSONContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]
    let tracker: FieldTracker
    let trackerIndex: Int

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool {
        tracker.markAsked(key.stringValue, in: trackerIndex)
        return members[key.stringValue] != nil
    }

    private func member(_ key: Key) throws -> JSONValue {
        tracker.markAsked(key.stringValue, in: trackerIndex)
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        tracker.markAsked(key.stringValue, in: trackerIndex)
        return members[key.stringValue]?.isNull ?? true
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let value = try member(key)
        return try decodeValue(T.self, from: value, path: codingPath + [key], tracker: tracker)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        tracker.markAsked(key.stringValue, in: trackerIndex)
        guard let value = members[key.stringValue], !value.isNull else { return nil }
        return try decodeValue(T.self, from: value, path: codingPath + [key], tracker: tracker)
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try JSONValueDecoder(value: member(key), codingPath: codingPath + [key], tracker: tracker)
            .container(keyedBy: NestedKey.self)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try JSONValueDecoder(value: member(key), codingPath: codingPath + [key], tracker: tracker).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        JSONValueDecoder(value: .object(members), codingPath: codingPath, tracker: tracker)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        try JSONValueDecoder(value: member(key), codingPath: codingPath + [key], tracker: tracker)
    }
}

/// Primitives decode strictly; everything else recurses through a `JSONValueDecoder`.
func decodeValue<T: Decodable>(_ type: T.Type, from value: JSONValue, path: [any CodingKey], tracker: FieldTracker)
    throws -> T
{
    if T.self == JSONValue.self, let result = value as? T { return result }
    switch T.self {
    case is String.Type, is Bool.Type, is Double.Type, is Int.Type, is Int64.Type, is Int32.Type:
        return try decodePrimitive(T.self, from: value, path: path)
    default:
        return try T(from: JSONValueDecoder(value: value, codingPath: path, tracker: tracker))
    }
}

struct UnkeyedJSONContainer: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [any CodingKey]
    let tracker: FieldTracker
    var currentIndex = 0

    init(items: [JSONValue], codingPath: [any CodingKey], tracker: FieldTracker) {
        self.items = items
        self.codingPath = codingPath
        self.tracker = tracker
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> (JSONValue, [any CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                JSONValue.self, .init(codingPath: codingPath, debugDescription: "no more items"))
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], codingPath + [IndexKey(intValue: currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex].isNull else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, path) = try next()
        return try decodeValue(T.self, from: value, path: path, tracker: tracker)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        let (value, path) = try next()
        return try JSONValueDecoder(value: value, codingPath: path, tracker: tracker).container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (value, path) = try next()
        return try JSONValueDecoder(value: value, codingPath: path, tracker: tracker).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let (value, path) = try next()
        return JSONValueDecoder(value: value, codingPath: path, tracker: tracker)
    }
}

struct SingleJSONContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]
    let tracker: FieldTracker

    func decodeNil() -> Bool { value.isNull }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try decodeValue(T.self, from: value, path: codingPath, tracker: tracker)
    }
}
