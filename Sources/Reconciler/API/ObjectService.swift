import Foundation
import Resources
import Routing

/// How a write request wants to be carried out.
public struct WriteOptions: Sendable {
    public var isDryRun: Bool
    public var fieldManager: String
    public var force: Bool
    /// Admins may read Secret values; everyone else sees them redacted.
    public var revealSecrets: Bool
    /// Whether the writer becomes a field manager. Off for defaults written on a user's behalf (a Runner
    /// created at enrolment), so that a later apply of the user's manifests takes the fields without conflict.
    public var recordsOwnership: Bool

    public init(
        isDryRun: Bool = false, fieldManager: String = "steady", force: Bool = false, revealSecrets: Bool = false,
        recordsOwnership: Bool = true
    ) {
        self.isDryRun = isDryRun
        self.fieldManager = fieldManager
        self.force = force
        self.revealSecrets = revealSecrets
        self.recordsOwnership = recordsOwnership
    }
}

/// A patch body and its media type.
public enum Patch: Sendable {
    case merge(JSONValue)
    case json(JSONValue)
    case apply(JSONValue)
}

/// The API's operations on objects, independent of HTTP: validation, metadata, generations, managed fields,
/// compare-and-set, and Secret redaction.
public struct ObjectService: Sendable {
    public let store: any ObjectStore
    /// The expressions and templates admission compiled, for the reconcilers and later writes to reuse.
    public let compiled: CompiledCache
    /// Retries of read-modify-write operations that lost a compare-and-set race.
    let conflictRetries = 8

    public init(store: any ObjectStore, compiled: CompiledCache = CompiledCache()) {
        self.store = store
        self.compiled = compiled
    }

    // MARK: Reading

    public func get(_ info: KindInfo, name: String, revealSecrets: Bool = false) async throws(APIError) -> JSONValue {
        guard let stored = try await storeCall({ try await store.get(kind: info.kind, name: name) }) else {
            throw APIError.notFound(info, name)
        }
        return try present(stored, info: info, revealSecrets: revealSecrets)
    }

    public func list(
        _ info: KindInfo, labels: LabelQuery = LabelQuery(), name: String? = nil, revealSecrets: Bool = false
    ) async throws(APIError) -> (items: [JSONValue], revision: Int64) {
        let (objects, revision) = try await storeCall { try await store.list(kind: info.kind) }
        var items: [JSONValue] = []
        items.reserveCapacity(objects.count)
        for stored in objects where name == nil || stored.name == name {
            let object = try present(stored, info: info, revealSecrets: revealSecrets)
            if labels.terms.isEmpty || labels.matches(ObjectService.labels(of: object)) {
                items.append(object)
            }
        }
        return (items, revision)
    }

    /// The stored JSON with its resourceVersion, and Secret values redacted unless revealed.
    public func present(_ stored: StoredObject, info: KindInfo, revealSecrets: Bool) throws(APIError) -> JSONValue {
        var object: JSONValue
        do {
            object = try JSONValue.parse(stored.value)
        } catch {
            throw APIError(.internalError, "stored \(info.kind) \"\(stored.name)\" is unreadable: \(error)")
        }
        object["metadata"]?["resourceVersion"] = .string(String(stored.modRevision))
        if info.kind == Secret.kind && !revealSecrets {
            object = ObjectService.redacted(object)
        }
        return object
    }

    static func redacted(_ secret: JSONValue) -> JSONValue {
        var copy = secret
        if let data = secret["data"]?.objectValue {
            copy["data"] = .object(data.mapValues { _ in .string(Secret.redactedValue) })
        }
        return copy
    }

    static func labels(of object: JSONValue) -> [String: String] {
        (object["metadata"]?["labels"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
    }

    // MARK: Writing

    /// Creates an object (POST), or validates it only when dry-running.
    public func create(_ info: KindInfo, body: JSONValue, options: WriteOptions) async throws(APIError) -> JSONValue {
        var object = body
        if object["metadata"]?["name"]?.stringValue?.isEmpty ?? true,
            let prefix = object["metadata"]?["generateName"]?.stringValue
        {
            object["metadata"]?["name"] = .string(prefix + ObjectService.randomSuffix())
        }
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        object["status"] = nil
        var admitted = try admit(info, object, name: name)
        stamp(&admitted, previous: nil)
        if options.recordsOwnership {
            var managed = ManagedFields(of: nil)
            managed.recordUpdate(by: options.fieldManager, old: nil, new: admitted, subresource: nil)
            managed.write(into: &admitted)
        }
        return try await write(info, name: name, object: admitted, previous: nil, options: options)
    }

    /// Replaces an object (PUT) or its status, with compare-and-set on `metadata.resourceVersion`.
    public func update(
        _ info: KindInfo, name: String, body: JSONValue, subresource: String?, options: WriteOptions
    ) async throws(APIError) -> JSONValue {
        if let bodyName = body["metadata"]?["name"]?.stringValue, bodyName != name {
            throw APIError(
                .badRequest, "the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        guard let expected = body["metadata"]?["resourceVersion"]?.stringValue, !expected.isEmpty else {
            throw APIError.invalid(
                info, name,
                ValidationFailure([
                    FieldError(path: "metadata.resourceVersion", reason: .required, message: "must be specified for an update")
                ]))
        }
        guard let revision = Int64(expected) else {
            throw APIError(.badRequest, "invalid resourceVersion \"\(expected)\"")
        }
        let current = try await currentObject(info, name: name)
        guard current.revision == revision else {
            throw conflict(info, name)
        }
        let updated = try mergeRecordingUpdate(
            body, over: current.object, subresource: subresource, info: info, manager: options.fieldManager)
        return try await write(info, name: name, object: updated, previous: current, options: options)
    }

    /// Patches an object or its status: JSON merge patch, or server-side apply (which creates when missing).
    public func patch(
        _ info: KindInfo, name: String, patch: Patch, subresource: String?, options: WriteOptions
    ) async throws(APIError) -> (object: JSONValue, created: Bool) {
        for _ in 0..<conflictRetries {
            let current: (object: JSONValue, revision: Int64)?
            if let stored = try await storeCall({ try await store.get(kind: info.kind, name: name) }) {
                current = (try decodeStored(stored, info: info), stored.modRevision)
            } else {
                current = nil
            }
            var updated: JSONValue
            switch patch {
            case .json(let operations):
                guard let current else { throw APIError.notFound(info, name) }
                var patched = try JSONPatch.apply(operations, to: current.object.settingRevision(current.revision))
                // A patch may carry new managed fields (kubectl migrates them this way); keep them if given.
                let managedFields = patched["metadata"]?["managedFields"]
                patched["metadata"]?["resourceVersion"] = nil
                if managedFields != current.object["metadata"]?["managedFields"] {
                    updated = try merge(patched, over: current.object, subresource: subresource, info: info)
                    updated["metadata"]?["managedFields"] = managedFields
                } else {
                    updated = try mergeRecordingUpdate(
                        patched, over: current.object, subresource: subresource, info: info,
                        manager: options.fieldManager)
                }
            case .merge(let body):
                guard let current else { throw APIError.notFound(info, name) }
                if let precondition = body["metadata"]?["resourceVersion"]?.stringValue,
                    precondition != String(current.revision)
                {
                    throw conflict(info, name)
                }
                updated = try mergeRecordingUpdate(
                    MergePatch.apply(body, to: current.object), over: current.object, subresource: subresource,
                    info: info, manager: options.fieldManager)
            case .apply(let body):
                try checkApplied(body, info: info, name: name)
                if current == nil && subresource != nil { throw APIError.notFound(info, name) }
                let applied = ServerSideApply.self
                let merged = try applied.apply(
                    body, to: current?.object, manager: options.fieldManager, force: options.force,
                    subresource: subresource, info: info)
                if let current {
                    updated = try merge(merged, over: current.object, subresource: subresource, info: info)
                    updated["metadata"]?["managedFields"] = merged["metadata"]?["managedFields"]
                } else {
                    var fresh = merged
                    fresh["status"] = nil
                    let managedFields = fresh["metadata"]?["managedFields"]
                    updated = try admit(info, fresh, name: name)
                    stamp(&updated, previous: nil)
                    updated["metadata"]?["managedFields"] = managedFields
                }
            }
            do {
                let object = try await write(info, name: name, object: updated, previous: current, options: options)
                return (object, current == nil)
            } catch let error where error.reason == .conflict && error.causes.isEmpty {
                continue
            } catch let error where error.reason == .alreadyExists && current == nil {
                // Created by someone else since it was read (an agent enrolling as a Runner being applied):
                // apply over what is there now.
                continue
            }
        }
        throw conflict(info, name)
    }

    /// Deletes an object; with finalizers, marks it for deletion instead.
    public func delete(
        _ info: KindInfo, name: String, expectedRevision: Int64? = nil, options: WriteOptions
    ) async throws(APIError) -> JSONValue {
        let current = try await currentObject(info, name: name)
        if let expectedRevision, expectedRevision != current.revision { throw conflict(info, name) }
        let finalizers = current.object["metadata"]?["finalizers"]?.arrayValue ?? []
        if !finalizers.isEmpty {
            var marked = current.object
            if marked["metadata"]?["deletionTimestamp"] == nil {
                marked["metadata"]?["deletionTimestamp"] = .string(Timestamp.now())
            }
            return try await write(info, name: name, object: marked, previous: current, options: options)
        }
        if options.isDryRun { return presentValue(current.object, revision: current.revision, info: info, options: options) }
        let deleted = try await storeCall {
            try await store.delete(kind: info.kind, name: name, expectedRevision: current.revision)
        }
        return try present(deleted, info: info, revealSecrets: options.revealSecrets)
    }

    /// Writes the status computed from the object as stored now, reading it once: the path of the status
    /// reconcilers and the agent gateway. `compute` is given the current object (with its resourceVersion) and
    /// returns the status to merge in. A concurrent write is retried with the newer object. Returns false when
    /// the object does not exist.
    @discardableResult
    public func updateStatus(
        _ info: KindInfo, name: String, options: WriteOptions, _ compute: (JSONValue) throws -> JSONValue
    ) async throws(APIError) -> Bool {
        for _ in 0..<conflictRetries {
            guard let stored = try await storeCall({ try await store.get(kind: info.kind, name: name) }) else {
                return false
            }
            let current = (object: try decodeStored(stored, info: info), revision: stored.modRevision)
            let status: JSONValue
            do {
                status = try compute(current.object.settingRevision(current.revision))
            } catch {
                throw APIError(.internalError, "cannot compute the status of \(info.kind) \"\(name)\": \(error)")
            }
            let updated = try mergeRecordingUpdate(
                MergePatch.apply(["status": status], to: current.object), over: current.object, subresource: "status",
                info: info, manager: options.fieldManager)
            let outcome = await writeOutcome(info, name: name, object: updated, previous: current, options: options)
            switch outcome {
            case .written: return true
            case .gone: return false
            case .conflict: continue
            case .failed(let error): throw error
            }
        }
        throw conflict(info, name)
    }

    private enum WriteOutcome {
        case written, gone, conflict
        case failed(APIError)
    }

    /// `write`, with a lost compare-and-set and a vanished object told apart from real failures.
    private func writeOutcome(
        _ info: KindInfo, name: String, object: JSONValue, previous: (object: JSONValue, revision: Int64),
        options: WriteOptions
    ) async -> WriteOutcome {
        do {
            _ = try await write(info, name: name, object: object, previous: previous, options: options)
            return .written
        } catch {
            if error.reason == .conflict && error.causes.isEmpty { return .conflict }
            if error.reason == .notFound { return .gone }
            return .failed(error)
        }
    }

    // MARK: Helpers

    private func currentObject(_ info: KindInfo, name: String) async throws(APIError) -> (object: JSONValue, revision: Int64) {
        guard let stored = try await storeCall({ try await store.get(kind: info.kind, name: name) }) else {
            throw APIError.notFound(info, name)
        }
        return (try decodeStored(stored, info: info), stored.modRevision)
    }

    private func decodeStored(_ stored: StoredObject, info: KindInfo) throws(APIError) -> JSONValue {
        do {
            return try JSONValue.parse(stored.value)
        } catch {
            throw APIError(.internalError, "stored \(info.kind) \"\(stored.name)\" is unreadable: \(error)")
        }
    }

    private func checkApplied(_ body: JSONValue, info: KindInfo, name: String) throws(APIError) {
        guard case .object = body else { throw APIError(.badRequest, "the applied configuration must be an object") }
        if let kind = body["kind"]?.stringValue, kind != info.kind {
            throw APIError(.badRequest, "the applied configuration has kind \(kind), expected \(info.kind)")
        }
        if let bodyName = body["metadata"]?["name"]?.stringValue, bodyName != name {
            throw APIError(.badRequest, "the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        if body["apiVersion"] == nil || body["kind"] == nil {
            throw APIError(.badRequest, "the applied configuration needs apiVersion and kind")
        }
    }

    /// Combines a submitted object with the current one: the main resource cannot change status, and the
    /// status subresource can change nothing else. Server-owned metadata is kept.
    /// ``merge(_:over:subresource:info:)``, recording what `manager` changed as an Update in the managed fields.
    private func mergeRecordingUpdate(
        _ submitted: JSONValue, over current: JSONValue, subresource: String?, info: KindInfo, manager: String
    ) throws(APIError) -> JSONValue {
        var updated = try merge(submitted, over: current, subresource: subresource, info: info)
        var managed = ManagedFields(of: current)
        managed.recordUpdate(by: manager, old: current, new: updated, subresource: subresource)
        managed.write(into: &updated)
        return updated
    }

    private func merge(
        _ submitted: JSONValue, over current: JSONValue, subresource: String?, info: KindInfo
    ) throws(APIError) -> JSONValue {
        let name = current["metadata"]?["name"]?.stringValue ?? ""
        var candidate: JSONValue
        if subresource == "status" {
            // Only the status changes, and the stored rest was admitted when written: validate the status alone.
            candidate = current
            candidate["metadata"]?["resourceVersion"] = nil
            if let status = submitted["status"], !status.isNull {
                do {
                    candidate["status"] = try info.normalizeStatus(status)
                } catch {
                    throw APIError.invalid(info, name, error)
                }
            } else {
                candidate["status"] = nil
            }
            return candidate
        } else {
            candidate = submitted
            candidate["status"] = current["status"]
            if info.kind == Secret.kind { candidate = ObjectService.restoringRedactedValues(candidate, from: current) }
        }
        candidate["metadata"]?["name"] = .string(name)
        var admitted = try admit(info, candidate, name: name)
        for key in ["uid", "creationTimestamp", "generation", "deletionTimestamp", "managedFields"] {
            admitted["metadata"]?[key] = current["metadata"]?[key]
        }
        if ObjectService.desiredState(admitted) != ObjectService.desiredState(current) {
            let generation = current["metadata"]?["generation"]?.intValue ?? 1
            admitted["metadata"]?["generation"] = .int(generation + 1)
        }
        return admitted
    }

    /// Everything but metadata and status: what a change of bumps `generation`.
    static func desiredState(_ object: JSONValue) -> JSONValue {
        var copy = object
        copy["metadata"] = nil
        copy["status"] = nil
        return copy
    }

    /// A client that read a redacted Secret and wrote it back must not overwrite the real values.
    static func restoringRedactedValues(_ secret: JSONValue, from current: JSONValue) -> JSONValue {
        guard var data = secret["data"]?.objectValue else { return secret }
        for (key, value) in data where value.stringValue == Secret.redactedValue {
            data[key] = current["data"]?[key]
        }
        var copy = secret
        copy["data"] = .object(data)
        return copy
    }

    private func admit(_ info: KindInfo, _ object: JSONValue, name: String) throws(APIError) -> JSONValue {
        var candidate = object
        if info.kind == Secret.kind, let text = candidate["metadata"]?["annotations"]?[ObjectService.lastAppliedAnnotation]?.stringValue {
            candidate["metadata"]?["annotations"]?[ObjectService.lastAppliedAnnotation] = ObjectService.withoutSecretValues(text)
        }
        do {
            var admitted = try Admission.admit(info, candidate, compiled: compiled)
            admitted["metadata"]?["resourceVersion"] = nil
            return admitted
        } catch {
            throw APIError.invalid(info, name, error)
        }
    }

    /// kubectl's client-side apply copies the whole object here, Secret values included.
    static let lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

    /// The last-applied configuration of a Secret without its values, which must never be stored in clear.
    static func withoutSecretValues(_ annotation: String) -> JSONValue? {
        guard var applied = try? JSONValue.parse(Data(annotation.utf8)) else { return nil }
        applied["data"] = nil
        applied["stringData"] = nil
        return .string(applied.jsonString() + "\n")
    }

    private func stamp(_ object: inout JSONValue, previous: JSONValue?) {
        object["metadata"]?["uid"] = .string(RandomUUID.make())
        object["metadata"]?["creationTimestamp"] = .string(Timestamp.now())
        object["metadata"]?["generation"] = 1
        object["metadata"]?["deletionTimestamp"] = nil
    }

    private func write(
        _ info: KindInfo, name: String, object: JSONValue, previous: (object: JSONValue, revision: Int64)?,
        options: WriteOptions
    ) async throws(APIError) -> JSONValue {
        var object = object
        object["metadata"]?["resourceVersion"] = nil
        if let previous, previous.object == object {
            return presentValue(object, revision: previous.revision, info: info, options: options)
        }
        if options.isDryRun {
            return presentValue(object, revision: previous?.revision ?? 0, info: info, options: options)
        }
        let data = object.jsonData()
        let stored: StoredObject
        if let previous {
            let isFinalized = object["metadata"]?["deletionTimestamp"] != nil
                && (object["metadata"]?["finalizers"]?.arrayValue ?? []).isEmpty
            if isFinalized {
                stored = try await storeCall {
                    try await store.delete(kind: info.kind, name: name, expectedRevision: previous.revision)
                }
            } else {
                stored = try await storeCall {
                    try await store.update(kind: info.kind, name: name, value: data, expectedRevision: previous.revision)
                }
            }
        } else {
            stored = try await storeCall { try await store.create(kind: info.kind, name: name, value: data) }
        }
        return presentValue(object, revision: stored.modRevision, info: info, options: options)
    }

    private func presentValue(_ object: JSONValue, revision: Int64, info: KindInfo, options: WriteOptions) -> JSONValue {
        var copy = object
        copy["metadata"]?["resourceVersion"] = .string(String(revision))
        if info.kind == Secret.kind && !options.revealSecrets { copy = ObjectService.redacted(copy) }
        return copy
    }

    private func conflict(_ info: KindInfo, _ name: String) -> APIError {
        APIError(
            .conflict,
            "Operation cannot be fulfilled on \(info.plural).\(API.group) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again",
            kind: info.plural, name: name)
    }

    /// Runs a store call, turning store errors into API errors.
    private func storeCall<T>(_ body: () async throws -> T) async throws(APIError) -> T {
        do {
            return try await body()
        } catch let error as StoreError {
            switch error.code {
            case .alreadyExists: throw APIError(.alreadyExists, error.message)
            case .conflict: throw APIError(.conflict, error.message)
            case .notFound: throw APIError(.notFound, error.message)
            case .compacted: throw APIError(.gone, error.message)
            default: throw APIError(.serviceUnavailable, "store unavailable: \(error.message)")
            }
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(.internalError, "\(error)")
        }
    }

    static func randomSuffix() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] })
    }
}

extension JSONValue {
    /// The object with `metadata.resourceVersion` set, as clients see it.
    func settingRevision(_ revision: Int64) -> JSONValue {
        var copy = self
        copy["metadata"]?["resourceVersion"] = .string(String(revision))
        return copy
    }
}
