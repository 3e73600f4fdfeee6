import Apply
import Resources

/// The controller's sources apply in process, through the object service, with the same ``Applier`` as
/// `apply -f`.
struct ObjectServiceApplyBackend: ApplyBackend {
    let objects: ObjectService

    func list(_ info: KindInfo, labelSelector: String?) async throws -> [JSONValue] {
        let query = try labelSelector.map { selector throws(FieldError) in try LabelQuery.parse(selector) }
        return try await objects.list(info, labels: query ?? LabelQuery()).items
    }

    func get(_ info: KindInfo, name: String) async throws -> JSONValue? {
        do {
            return try await objects.get(info, name: name)
        } catch where error.reason == .notFound {
            return nil
        }
    }

    func apply(
        _ info: KindInfo, _ object: JSONValue, fieldManager: String, force: Bool, dryRun: Bool
    ) async throws -> (object: JSONValue, created: Bool) {
        let name = object["metadata"]?["name"]?.stringValue ?? ""
        return try await objects.patch(
            info, name: name, patch: .apply(object), subresource: nil,
            options: WriteOptions(isDryRun: dryRun, fieldManager: fieldManager, force: force))
    }

    func delete(_ info: KindInfo, name: String, dryRun: Bool) async throws -> JSONValue? {
        do {
            return try await objects.delete(
                info, name: name, options: WriteOptions(isDryRun: dryRun, fieldManager: "steady"))
        } catch where error.reason == .notFound {
            return nil
        }
    }

    func configurationError(_ message: String) -> any Error {
        APIError(.badRequest, message)
    }
}
