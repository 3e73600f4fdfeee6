@_exported import Apply
import Resources

/// `apply -f` writes through the API over HTTP; the controller's sources share the same ``Applier``.
struct APIClientApplyBackend: ApplyBackend {
    let client: APIClient

    func list(_ info: KindInfo, labelSelector: String?) async throws -> [JSONValue] {
        try await client.list(info, labelSelector: labelSelector).items
    }

    func get(_ info: KindInfo, name: String) async throws -> JSONValue? {
        do {
            return try await client.get(info, name: name)
        } catch let error as APIClientError where error.isNotFound {
            return nil
        }
    }

    func apply(
        _ info: KindInfo, _ object: JSONValue, fieldManager: String, force: Bool, dryRun: Bool
    ) async throws -> (object: JSONValue, created: Bool) {
        let response = try await client.apply(info, object, fieldManager: fieldManager, force: force, dryRun: dryRun)
        return (response.object, response.created)
    }

    func delete(_ info: KindInfo, name: String, dryRun: Bool) async throws -> JSONValue? {
        do {
            return try await client.delete(info, name: name, dryRun: dryRun)
        } catch let error as APIClientError where error.isNotFound {
            return nil
        }
    }

    func configurationError(_ message: String) -> any Error {
        APIClientError(code: .configuration, message: message)
    }
}

extension Applier {
    /// Creates an applier that talks to the API through `client`.
    public init(client: APIClient, options: Options = Options()) {
        self.init(backend: APIClientApplyBackend(client: client), options: options)
    }
}
