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
            paths["/apis/\(API.group)/\(API.version)/\(info.plural)"] = collectionPath(info)
            paths["/apis/\(API.group)/\(API.version)/\(info.plural)/{name}"] = itemPath(info)
            if info.hasStatus {
                paths["/apis/\(API.group)/\(API.version)/\(info.plural)/{name}/status"] = itemPath(info)
            }
        }
        return [
            "openapi": "3.0.0",
            "info": ["title": "steady", "version": .string(API.version)],
            "paths": .object(paths),
            "components": ["schemas": .object(schemas)],
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
        var operation: [String: JSONValue] = [
            "operationId": .string(id),
            "x-kubernetes-action": .string(action),
            "x-kubernetes-group-version-kind": ["group": .string(API.group), "version": .string(API.version), "kind": .string(info.kind)],
            "parameters": .array(parameters),
            "responses": ["200": ["description": "OK", "content": ["application/json": ["schema": reference(info)]]]],
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
                    ["name": "watch", "in": "query", "schema": ["type": "boolean"]],
                    ["name": "resourceVersion", "in": "query", "schema": ["type": "string"]],
                ],
                "responses": [
                    "200": [
                        "description": "OK",
                        "content": ["application/json": ["schema": ["$ref": .string("#/components/schemas/\(componentName(info.kind + "List"))")]]],
                    ]
                ],
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
}
