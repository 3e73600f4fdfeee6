/// The OpenAPI v3 documents the API server publishes, generated from the recorded schemas.
public enum OpenAPI {
    /// `dev.steady.v1.Route`: the reverse-DNS names Kubernetes uses for schema components.
    public static func componentName(_ kind: String) -> String { "dev.steady.v1.\(kind)" }

    /// The document for `/openapi/v3/apis/steady.dev/v1`.
    public static func groupVersionDocument() -> JSONValue {
        var schemas: [String: JSONValue] = [:]
        var paths: [String: JSONValue] = [:]
        for info in Kinds.all {
            var object = render(info.schema)
            object["x-kubernetes-group-version-kind"] = gvk(info.kind)
            schemas[componentName(info.kind)] = object
            schemas[componentName(info.kind + "List")] = listSchema(info)
            schemas[statusComponent] = statusSchema
            paths["/apis/\(API.group)/\(API.version)/\(info.plural)"] = collectionPath(info)
            paths["/apis/\(API.group)/\(API.version)/\(info.plural)/{name}"] = itemPath(info)
            if info.hasStatus {
                paths["/apis/\(API.group)/\(API.version)/\(info.plural)/{name}/status"] = statusPath(info)
            }
        }
        return [
            "openapi": "3.0.0",
            "info": ["title": "steady", "version": .string(API.version)],
            "paths": .object(paths),
            "components": ["schemas": .object(schemas), "responses": errorResponseComponents],
        ]
    }

    /// The index at `/openapi/v3`, pointing kubectl at the group-version document.
    public static func indexDocument(hash: String) -> JSONValue {
        [
            "paths": [
                "apis/\(API.group)/\(API.version)": [
                    "serverRelativeURL": .string("/openapi/v3/apis/\(API.group)/\(API.version)?hash=\(hash)")
                ]
            ]
        ]
    }

    /// The `/openapi/v2` document as JSON: Swagger 2.0 with no definitions.
    ///
    /// kubectl validates a `v1 List` on the client: it looks each item's kind up in the v2 document, skips
    /// kinds the document does not define, and fails when `/openapi/v2` is missing. Every steady kind is
    /// validated strictly by the server (kubectl learns from the v3 document that the server takes
    /// `fieldValidation`), so the v2 document only has to exist.
    public static func swaggerDocument() -> JSONValue {
        [
            "swagger": "2.0",
            "info": ["title": "steady", "version": .string(API.version)],
            "paths": [:],
            "definitions": [:],
        ]
    }

    /// The media type of `/openapi/v2` as protobuf (gnostic's `openapi_v2.Document`), as kube-apiserver labels
    /// it: kubectl asks for `...spec.v2@v1.0+protobuf`, but Go's MIME parser refuses the `@` in a response.
    public static let swaggerProtobufMediaType = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

    /// ``swaggerDocument()`` as the protobuf kubectl reads: field 1 (`swagger`) is `"2.0"`; the empty
    /// `info`, `paths` and `definitions` need no bytes.
    public static func swaggerProtobuf() -> [UInt8] {
        let version = Array("2.0".utf8)
        // Tag of field 1, wire type 2 (length-delimited), then the length and the bytes.
        return [0x0A, UInt8(version.count)] + version
    }

    /// Renders a schema as OpenAPI v3 JSON Schema with the Kubernetes extensions.
    public static func render(_ schema: Schema) -> JSONValue {
        var object: [String: JSONValue] = [:]
        switch schema.shape {
        case .string: object["type"] = "string"
        case .integer: object["type"] = "integer"
        case .number: object["type"] = "number"
        case .boolean: object["type"] = "boolean"
        case .array:
            object["type"] = "array"
            object["items"] = schema.element.map(render) ?? [:]
        case .map:
            object["type"] = "object"
            object["additionalProperties"] = schema.element.map(render) ?? [:]
        case .object:
            object["type"] = "object"
            object["properties"] = .object(
                Dictionary(uniqueKeysWithValues: schema.properties.map { ($0.name, render($0.schema)) }))
            let required = schema.properties.filter(\.isRequired).map { JSONValue.string($0.name) }
            if !required.isEmpty { object["required"] = .array(required) }
        case .any:
            object["x-kubernetes-preserve-unknown-fields"] = true
        case .integerOrString:
            object["x-kubernetes-int-or-string"] = true
            object["anyOf"] = [["type": "integer"], ["type": "string"]]
        }
        if let description = schema.description { object["description"] = .string(description) }
        if let format = schema.format { object["format"] = .string(format) }
        if let pattern = schema.pattern { object["pattern"] = .string(pattern) }
        if let values = schema.allowedValues { object["enum"] = .array(values.map(JSONValue.string)) }
        return .object(object)
    }

    private static func gvk(_ kind: String) -> JSONValue {
        [["group": .string(API.group), "version": .string(API.version), "kind": .string(kind)]]
    }

    private static func listSchema(_ info: KindInfo) -> JSONValue {
        [
            "type": "object",
            "x-kubernetes-group-version-kind": gvk(info.kind + "List"),
            "required": ["items"],
            "properties": [
                "apiVersion": ["type": "string"],
                "kind": ["type": "string"],
                "metadata": ["type": "object", "x-kubernetes-preserve-unknown-fields": true],
                "items": ["type": "array", "items": ["$ref": .string("#/components/schemas/\(componentName(info.kind))")]],
            ],
        ]
    }

    /// The component every error answer refers to.
    static let statusComponent = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"

    /// `kind: Status`, the body of every error answer.
    static let statusSchema: JSONValue = [
        "type": "object",
        "description": "The outcome of a failed request: why (reason, message) and which fields (details.causes).",
        "x-kubernetes-group-version-kind": [["group": "", "version": "v1", "kind": "Status"]],
        "properties": [
            "apiVersion": ["type": "string"],
            "kind": ["type": "string"],
            "metadata": ["type": "object", "x-kubernetes-preserve-unknown-fields": true],
            "status": ["type": "string", "description": "Failure."],
            "message": ["type": "string", "description": "What went wrong, for a person."],
            "reason": ["type": "string", "description": "BadRequest, Unauthorized, Forbidden, NotFound, Conflict, ..."],
            "code": ["type": "integer", "format": "int32", "description": "The HTTP status code."],
            "details": [
                "type": "object",
                "properties": [
                    "name": ["type": "string"],
                    "group": ["type": "string"],
                    "kind": ["type": "string"],
                    "causes": [
                        "type": "array",
                        "items": [
                            "type": "object",
                            "properties": [
                                "field": ["type": "string"], "reason": ["type": "string"],
                                "message": ["type": "string"],
                            ],
                        ],
                    ],
                ],
            ],
        ],
    ]

    /// The error answers of every operation, each a `Status`.
    public static let errorResponses: [(code: String, description: String)] = [
        ("400", "Bad request: an unreadable body or an invalid query parameter."),
        ("401", "Unauthorized: no valid bearer token."),
        ("403", "Forbidden: the caller may not do this."),
        ("404", "Not found: no such object, kind or subresource."),
        ("409", "Conflict: the object exists, changed since it was read, or another field manager owns a field."),
        ("422", "Invalid: the object breaks the schema; details.causes names each field."),
        ("500", "Internal error."),
    ]

    /// Every error answer once, as a `Status`; operations refer to them, which keeps the document small (kubectl
    /// reads it for each object it validates).
    static var errorResponseComponents: JSONValue {
        let statusReference: JSONValue = ["$ref": .string("#/components/schemas/\(statusComponent)")]
        let status: JSONValue = ["application/json": ["schema": statusReference]]
        return .object(
            Dictionary(
                uniqueKeysWithValues: errorResponses.map { code, description in
                    ("Status\(code)", ["description": .string(description), "content": status] as JSONValue)
                }))
    }

    /// `200` with `schema`, and every error answer.
    private static func responses(ok schema: JSONValue, created: Bool = false) -> JSONValue {
        let content: JSONValue = ["application/json": ["schema": schema]]
        var responses: [String: JSONValue] = ["200": ["description": "OK", "content": content]]
        if created { responses["201"] = ["description": "Created", "content": content] }
        for (code, _) in errorResponses {
            responses[code] = ["$ref": .string("#/components/responses/Status\(code)")]
        }
        return .object(responses)
    }

    private static func reference(_ info: KindInfo) -> JSONValue {
        ["$ref": .string("#/components/schemas/\(componentName(info.kind))")]
    }

    private static func operation(_ info: KindInfo, _ id: String, action: String, body: Bool) -> JSONValue {
        var parameters: [JSONValue] = [
            ["name": "dryRun", "in": "query", "schema": ["type": "string"], "description": "All: validate only."],
            ["name": "fieldManager", "in": "query", "schema": ["type": "string"]],
            [
                "name": "fieldValidation", "in": "query", "schema": ["type": "string"],
                "description": "Unknown and duplicate fields are always rejected (Strict).",
            ],
        ]
        if action == "patch" { parameters.append(["name": "force", "in": "query", "schema": ["type": "boolean"]]) }
        if action == "get" || action == "post" || action == "put" || action == "patch" {
            parameters.append([
                "name": "reveal", "in": "query", "schema": ["type": "boolean"],
                "description": "Secrets: show values instead of **redacted** (admins only).",
            ])
        }
        var operation: [String: JSONValue] = [
            "operationId": .string(id),
            "x-kubernetes-action": .string(action),
            "x-kubernetes-group-version-kind": ["group": .string(API.group), "version": .string(API.version), "kind": .string(info.kind)],
            "parameters": .array(parameters),
            "responses": responses(ok: reference(info), created: action == "post" || action == "patch"),
        ]
        if body {
            operation["requestBody"] = ["content": ["application/json": ["schema": reference(info)]]]
        }
        return .object(operation)
    }

    private static func collectionPath(_ info: KindInfo) -> JSONValue {
        [
            "get": [
                "operationId": .string("list\(info.kind)"),
                "x-kubernetes-action": "list",
                "x-kubernetes-group-version-kind": ["group": .string(API.group), "version": .string(API.version), "kind": .string(info.kind)],
                "parameters": [
                    ["name": "labelSelector", "in": "query", "schema": ["type": "string"]],
                    [
                        "name": "fieldSelector", "in": "query", "schema": ["type": "string"],
                        "description": "Only metadata.name=NAME.",
                    ],
                    ["name": "watch", "in": "query", "schema": ["type": "boolean"]],
                    ["name": "allowWatchBookmarks", "in": "query", "schema": ["type": "boolean"]],
                    ["name": "resourceVersion", "in": "query", "schema": ["type": "string"]],
                    ["name": "timeoutSeconds", "in": "query", "schema": ["type": "integer", "minimum": 0]],
                    ["name": "limit", "in": "query", "schema": ["type": "integer", "minimum": 0]],
                    ["name": "reveal", "in": "query", "schema": ["type": "boolean"]],
                ],
                "responses": responses(
                    ok: ["$ref": .string("#/components/schemas/\(componentName(info.kind + "List"))")]),
            ],
            "post": operation(info, "create\(info.kind)", action: "post", body: true),
        ]
    }

    private static func itemPath(_ info: KindInfo) -> JSONValue {
        [
            "parameters": [["name": "name", "in": "path", "required": true, "schema": ["type": "string"]]],
            "get": operation(info, "read\(info.kind)", action: "get", body: false),
            "put": operation(info, "replace\(info.kind)", action: "put", body: true),
            "patch": operation(info, "patch\(info.kind)", action: "patch", body: true),
            "delete": operation(info, "delete\(info.kind)", action: "delete", body: false),
        ]
    }

    /// The `status` subresource: read, replaced and patched, never deleted on its own, as in Kubernetes.
    private static func statusPath(_ info: KindInfo) -> JSONValue {
        [
            "parameters": [["name": "name", "in": "path", "required": true, "schema": ["type": "string"]]],
            "get": operation(info, "read\(info.kind)Status", action: "get", body: false),
            "put": operation(info, "replace\(info.kind)Status", action: "put", body: true),
            "patch": operation(info, "patch\(info.kind)Status", action: "patch", body: true),
        ]
    }
}
