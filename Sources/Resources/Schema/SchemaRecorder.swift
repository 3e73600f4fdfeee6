import Foundation
import Synchronization

/// Derives a `Schema` from a `Decodable` type by watching what its `init(from:)` asks for.
///
/// This keeps one definition of every kind: the Swift types. Required properties are the ones decoded
/// with `decode`, optional ones with `decodeIfPresent`; placeholder values built from the recorded
/// schema let decoding continue past each property.
public enum SchemaRecorder {
    private static let cache = Mutex<[ObjectIdentifier: Schema]>([:])

    public static func schema(for type: any Decodable.Type) -> Schema {
        let id = ObjectIdentifier(type)
        if let cached = cache.withLock({ $0[id] }) { return cached }
        let schema = record(type)
        cache.withLock { $0[id] = schema }
        return schema
    }

    private static func record(_ type: any Decodable.Type) -> Schema {
        switch type {
        case let provider as any SchemaProviding.Type: return provider.schema
        case is String.Type: return .string()
        case is Bool.Type: return Schema(.boolean)
        case is Int.Type, is Int64.Type: return Schema(.integer, format: "int64")
        case is Int32.Type: return Schema(.integer, format: "int32")
        case is Double.Type: return Schema(.number, format: "double")
        case is JSONValue.Type: return Schema(.any)
        case let optional as any SchemaOptionalType.Type: return schema(for: optional.wrappedType)
        case let array as any SchemaArrayType.Type: return .array(of: schema(for: array.elementType))
        case let map as any SchemaMapType.Type: return .map(of: schema(for: map.valueType))
        default: break
        }
        let recorder = RecordingDecoder()
        // Decoding fails only for types with custom validation; what was recorded up to then still stands.
        _ = try? type.init(from: recorder)
        let descriptions = (type as? any FieldDocumented.Type)?.fieldDescriptions ?? [:]
        let properties = recorder.log.properties.map { property in
            Schema.Property(
                name: property.name, schema: property.schema.described(descriptions[property.name]),
                isRequired: property.isRequired)
        }
        return Schema(.object, properties: properties)
    }

    /// A value of `type` built from its schema's minimal example.
    static func placeholder<T: Decodable>(_ type: T.Type) throws -> T {
        let example = schema(for: type).example
        let tracker = FieldTracker()
        return try decodeValue(T.self, from: example, path: [], tracker: tracker)
    }
}

protocol SchemaOptionalType { static var wrappedType: any Decodable.Type { get } }
extension Optional: SchemaOptionalType where Wrapped: Decodable {
    static var wrappedType: any Decodable.Type { Wrapped.self }
}

protocol SchemaArrayType { static var elementType: any Decodable.Type { get } }
extension Array: SchemaArrayType where Element: Decodable {
    static var elementType: any Decodable.Type { Element.self }
}

protocol SchemaMapType { static var valueType: any Decodable.Type { get } }
extension Dictionary: SchemaMapType where Key == String, Value: Decodable {
    static var valueType: any Decodable.Type { Value.self }
}

/// What one recording saw, in the order the properties were asked for.
final class RecordingLog: @unchecked Sendable {
    // Used by one recording at a time on one thread.
    var properties: [Schema.Property] = []

    func note(_ name: String, _ type: any Decodable.Type, required: Bool) {
        guard !properties.contains(where: { $0.name == name }) else { return }
        properties.append(.init(name: name, schema: SchemaRecorder.schema(for: type), isRequired: required))
    }
}

struct RecordingDecoder: Decoder {
    let log = RecordingLog()
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(RecordingContainer<Key>(log: log))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch(Any.self, .init(codingPath: [], debugDescription: "not recordable"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(Any.self, .init(codingPath: [], debugDescription: "not recordable"))
    }
}

struct RecordingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let log: RecordingLog
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { [] }

    func contains(_ key: Key) -> Bool { true }
    func decodeNil(forKey key: Key) throws -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        log.note(key.stringValue, T.self, required: true)
        return try SchemaRecorder.placeholder(T.self)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        log.note(key.stringValue, T.self, required: false)
        return nil
    }

    // The standard library's defaults for these overloads go through `decode`, which would record the
    // optional property as required.
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try generic(type, key) }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try generic(type, key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try generic(type, key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try generic(type, key) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try generic(type, key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try generic(type, key) }

    private func generic<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
        try decodeIfPresent(type, forKey: key) as T?
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        throw DecodingError.typeMismatch(Any.self, .init(codingPath: [], debugDescription: "not recordable"))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch(Any.self, .init(codingPath: [], debugDescription: "not recordable"))
    }

    func superDecoder() throws -> any Decoder { RecordingDecoder() }
    func superDecoder(forKey key: Key) throws -> any Decoder { RecordingDecoder() }
}
