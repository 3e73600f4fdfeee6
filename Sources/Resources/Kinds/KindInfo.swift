/// Everything the API, the CLIs and the OpenAPI document need to know about one kind.
public struct KindInfo: Sendable {
    public let kind: String
    public let plural: String
    public let shortNames: [String]
    /// Whether the kind has a status written through the `status` subresource.
    public let hasStatus: Bool
    /// Whether the API only lists the kind (`get`, `list`): records it keeps, not objects anyone writes.
    public let isReadOnly: Bool
    /// The schema of a whole object, recorded from the Swift type.
    public let schema: Schema
    private let decodeAndValidate: @Sendable (JSONValue) throws(ValidationFailure) -> JSONValue
    private let decodeStatus: @Sendable (JSONValue) throws(ValidationFailure) -> JSONValue

    public var singular: String { kind.lowercased() }
    public var apiVersion: String { API.apiVersion }
    /// `route.steady.dev`, as kubectl prints it.
    public var qualifiedName: String { "\(singular).\(API.group)" }

    init(
        kind: String, plural: String, shortNames: [String], hasStatus: Bool, isReadOnly: Bool = false,
        schema: Schema, decodeAndValidate: @escaping @Sendable (JSONValue) throws(ValidationFailure) -> JSONValue,
        decodeStatus: @escaping @Sendable (JSONValue) throws(ValidationFailure) -> JSONValue
    ) {
        self.kind = kind
        self.plural = plural
        self.shortNames = shortNames
        self.hasStatus = hasStatus
        self.isReadOnly = isReadOnly
        self.schema = schema
        self.decodeAndValidate = decodeAndValidate
        self.decodeStatus = decodeStatus
    }

    /// Validates an object strictly and returns its canonical form (defaults out, `stringData` folded).
    ///
    /// Errors carry field paths from the object's root (`spec.actions[0]`).
    public func normalize(_ object: JSONValue) throws(ValidationFailure) -> JSONValue {
        var errors: [FieldError] = []
        guard case .object = object else {
            throw ValidationFailure([FieldError(path: "", reason: .typeMismatch, message: "expected an object, got \(object.typeName)")])
        }
        if let apiVersion = object["apiVersion"]?.stringValue, apiVersion != API.apiVersion {
            errors.append(
                FieldError(
                    path: "apiVersion", reason: .notSupported,
                    message: "unsupported apiVersion \"\(apiVersion)\" for kind \(kind): use \(API.apiVersion)"))
        }
        if let given = object["kind"]?.stringValue, given != kind {
            errors.append(FieldError(path: "kind", reason: .invalid, message: "expected kind \(kind), got \(given)"))
        }
        if !errors.isEmpty { throw ValidationFailure(errors) }
        var withoutNamespace = object
        // Every kind is cluster-scoped: a namespace is ignored, as the Kubernetes API server does.
        withoutNamespace["metadata"]?["namespace"] = nil
        return try decodeAndValidate(withoutNamespace)
    }

    /// Validates a status strictly and returns its canonical form, for writes of the `status` subresource, which
    /// change nothing else: the rest of the stored object was validated when it was written.
    ///
    /// Errors carry field paths from the object's root (`status.conditions[0].status`).
    public func normalizeStatus(_ status: JSONValue) throws(ValidationFailure) -> JSONValue {
        do {
            return try decodeStatus(status)
        } catch {
            throw ValidationFailure(error.errors.map { $0.nested(under: "status") })
        }
    }

    static func make<Spec: ResourceSpec>(_ type: Spec.Type) -> KindInfo {
        KindInfo(
            kind: Spec.kind, plural: Spec.plural, shortNames: Spec.shortNames, hasStatus: true,
            schema: SchemaRecorder.schema(for: Resource<Spec>.self),
            decodeAndValidate: { (value: JSONValue) throws(ValidationFailure) -> JSONValue in
                let object = try StrictDecoder().decode(Resource<Spec>.self, from: value)
                let errors = validateMetadata(object.metadata) + object.spec.validate().map { $0.nested(under: "spec") }
                if !errors.isEmpty { throw ValidationFailure(errors) }
                return try encodeCanonical(object)
            },
            decodeStatus: { (value: JSONValue) throws(ValidationFailure) -> JSONValue in
                try encodeCanonical(try StrictDecoder().decode(Spec.Status.self, from: value))
            })
    }

    static func makeSecret() -> KindInfo {
        KindInfo(
            kind: Secret.kind, plural: Secret.plural, shortNames: Secret.shortNames, hasStatus: false,
            schema: SchemaRecorder.schema(for: Secret.self),
            decodeAndValidate: { (value: JSONValue) throws(ValidationFailure) -> JSONValue in
                let secret = try StrictDecoder().decode(Secret.self, from: value)
                let errors = validateMetadata(secret.metadata) + secret.validate()
                if !errors.isEmpty { throw ValidationFailure(errors) }
                return try encodeCanonical(secret.foldingStringData())
            },
            decodeStatus: { (_: JSONValue) throws(ValidationFailure) -> JSONValue in
                throw ValidationFailure([FieldError(path: "", reason: .notSupported, message: "a Secret has no status")])
            })
    }

    /// A kind the API lists but nobody writes (``isReadOnly``): every write is refused before it is decoded.
    static func makeReadOnly(kind: String, plural: String, shortNames: [String]) -> KindInfo {
        let refusal = { @Sendable (_: JSONValue) throws(ValidationFailure) -> JSONValue in
            throw ValidationFailure([
                FieldError(path: "", reason: .notSupported, message: "\(kind) objects are read-only records")
            ])
        }
        return KindInfo(
            kind: kind, plural: plural, shortNames: shortNames, hasStatus: false, isReadOnly: true,
            schema: Schema(.object), decodeAndValidate: refusal, decodeStatus: refusal)
    }

    private static func encodeCanonical(_ object: some Encodable) throws(ValidationFailure) -> JSONValue {
        do {
            return try JSONValue(encoding: object)
        } catch {
            throw ValidationFailure([FieldError(path: "", message: "cannot encode object: \(error)")])
        }
    }
}

/// Checks the user-set parts of metadata.
func validateMetadata(_ metadata: ObjectMeta) -> [FieldError] {
    var errors: [FieldError] = []
    if metadata.generateName == nil || !metadata.name.isEmpty {
        errors += Names.validateObjectName(metadata.name)
    }
    for (key, value) in metadata.labels ?? [:] {
        errors += Names.validateLabel(key: key, value: value, at: "metadata.labels")
    }
    var annotationBytes = 0
    for (key, value) in metadata.annotations ?? [:] {
        errors += Names.validateLabelKey(key, at: "metadata.annotations.\(key)")
        annotationBytes += key.utf8.count + value.utf8.count
    }
    if annotationBytes > 256 * 1024 {
        errors.append(FieldError(path: "metadata.annotations", reason: .tooLong, message: "annotations may hold at most 256 KiB"))
    }
    return errors
}
