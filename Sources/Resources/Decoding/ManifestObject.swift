/// One validated object read from a manifest, with where it came from.
public struct ManifestObject: Sendable {
    public var info: KindInfo
    /// The canonical object, as the API server would store it.
    public var value: JSONValue
    public var source: ManifestDocument

    public var name: String { value["metadata"]?["name"]?.stringValue ?? "" }
    public var kind: String { info.kind }
    /// `route.steady.dev/trc-2-mixed`, as kubectl prints objects.
    public var displayName: String { "\(info.qualifiedName)/\(name)" }
}

/// Turns manifest documents into validated objects.
public enum ManifestValidation {
    /// Validates one document; errors name the file, the document, and the field path.
    public static func object(from document: ManifestDocument) throws(ManifestError) -> ManifestObject {
        func failure(_ error: FieldError) -> ManifestError {
            ManifestError(
                file: document.file, document: document.index, line: document.line, column: nil,
                fieldPath: error.path.isEmpty ? nil : error.path, message: error.message)
        }
        do {
            let info = try kindInfo(of: document.value)
            let value = try info.normalize(document.value)
            return ManifestObject(info: info, value: value, source: document)
        } catch let failure as ValidationFailure {
            throw combined(failure, in: document)
        } catch let error as FieldError {
            throw failure(error)
        } catch {
            throw failure(FieldError(path: "", message: "\(error)"))
        }
    }

    /// The object for a document whose value `info` already admitted (normalized and checked).
    public static func object(admitted value: JSONValue, of info: KindInfo, from document: ManifestDocument) -> ManifestObject {
        ManifestObject(info: info, value: value, source: document)
    }

    /// Validates every document, collecting all errors, and rejects two documents that declare the same object.
    public static func objects(from documents: [ManifestDocument]) -> (objects: [ManifestObject], errors: [ManifestError]) {
        var objects: [ManifestObject] = []
        var errors: [ManifestError] = []
        var seen: [String: ManifestDocument] = [:]
        for document in documents {
            do {
                let object = try object(from: document)
                let key = "\(object.kind)/\(object.name)"
                if let first = seen[key], !object.name.isEmpty {
                    errors.append(
                        ManifestError(
                            file: document.file, document: document.index, line: document.line, column: nil,
                            fieldPath: "metadata.name",
                            message:
                                "duplicate object \(object.kind) \"\(object.name)\": already declared in \(first.file) document \(first.index)"
                        ))
                    continue
                }
                seen[key] = document
                objects.append(object)
            } catch {
                errors.append(error)
            }
        }
        return (objects, errors)
    }

    /// Finds the kind of a raw object, with a clear error for a missing, unknown or misspelt kind.
    public static func kindInfo(of value: JSONValue) throws(FieldError) -> KindInfo {
        guard case .object = value else {
            throw FieldError(path: "", reason: .typeMismatch, message: "expected an object, got \(value.typeName)")
        }
        guard let apiVersion = value["apiVersion"]?.stringValue else {
            throw FieldError(path: "apiVersion", reason: .required, message: "required field is missing (use \(API.apiVersion))")
        }
        guard let kind = value["kind"]?.stringValue else {
            throw FieldError(path: "kind", reason: .required, message: "required field is missing")
        }
        guard let info = Kinds.info(forKind: kind) else {
            var message = "unknown kind \"\(kind)\""
            if let suggestion = Suggestion.nearest(to: kind, among: Kinds.all.map(\.kind)) {
                message += "; did you mean \(suggestion)?"
            } else {
                message += "; known kinds: " + Kinds.all.map(\.kind).joined(separator: ", ")
            }
            throw FieldError(path: "kind", reason: .notSupported, message: message)
        }
        guard apiVersion == API.apiVersion else {
            throw FieldError(
                path: "apiVersion", reason: .notSupported,
                message: "unsupported apiVersion \"\(apiVersion)\" for kind \(kind): use \(API.apiVersion)")
        }
        return info
    }

    private static func combined(_ failure: ValidationFailure, in document: ManifestDocument) -> ManifestError {
        guard let first = failure.errors.first else {
            return ManifestError(
                file: document.file, document: document.index, line: document.line, column: nil, fieldPath: nil,
                message: "invalid object")
        }
        var message = first.message
        for other in failure.errors.dropFirst() {
            message += "\n  \(other.description)"
        }
        return ManifestError(
            file: document.file, document: document.index, line: document.line, column: nil,
            fieldPath: first.path.isEmpty ? nil : first.path, message: message)
    }
}
