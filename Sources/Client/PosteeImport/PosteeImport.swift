import Resources

/// The steady manifests made from a Postee configuration, and what could not be carried over.
public struct PosteeImport: Sendable {
    /// One file to write: its name (such as `routes.yaml`) and its objects, in order.
    public struct File: Sendable {
        public var name: String
        public var objects: [JSONValue]
    }

    /// The files, only those with objects: secrets, templates, actions, routes, runners (with assignments).
    public var files: [File]
    public var warnings: [PosteeImportWarning]

    /// Every object, in the order `apply` should create them.
    public var objects: [JSONValue] { files.flatMap(\.objects) }
}
