import Resources

/// Dry-run modes of an apply.
public enum ApplyDryRun: String, Sendable, CaseIterable {
    /// Persist the change.
    case none
    /// Do not contact the server for writes.
    case client
    /// Have the server validate and compute the result without storing it (`dryRun=All`).
    case server
}

/// What an apply writes through: the API over HTTP for `apply -f`, the controller's object service in process
/// for the manifests directory and Git sources. Both sides then share one pipeline (``Applier``).
public protocol ApplyBackend: Sendable {
    /// The objects of a kind, filtered by a label selector (`key=value`) when one is given.
    func list(_ info: KindInfo, labelSelector: String?) async throws -> [JSONValue]
    /// The object, or nil when it does not exist.
    func get(_ info: KindInfo, name: String) async throws -> JSONValue?
    /// Server-side apply; returns the stored object and whether the apply created it.
    func apply(
        _ info: KindInfo, _ object: JSONValue, fieldManager: String, force: Bool, dryRun: Bool
    ) async throws -> (object: JSONValue, created: Bool)
    /// Deletes the object; returns it as deleted, or nil when it did not exist.
    func delete(_ info: KindInfo, name: String, dryRun: Bool) async throws -> JSONValue?
    /// The error to throw for a problem with how the apply was asked for (such as an unusable ApplySet parent),
    /// in the backend's own error type.
    func configurationError(_ message: String) -> any Error
}
