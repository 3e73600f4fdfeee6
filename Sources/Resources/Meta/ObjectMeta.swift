/// Kubernetes object metadata: the user sets name, labels and annotations; the server sets the rest.
public struct ObjectMeta: Codable, Sendable, Equatable, FieldDocumented {
    public var name: String
    public var generateName: String?
    public var namespace: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?
    public var deletionGracePeriodSeconds: Int64?
    public var finalizers: [String]?
    public var ownerReferences: [OwnerReference]?
    public var managedFields: [ManagedFieldsEntry]?

    public init(name: String, labels: [String: String]? = nil, annotations: [String: String]? = nil) {
        self.name = name
        self.labels = labels
        self.annotations = annotations
    }

    enum CodingKeys: String, CodingKey {
        case name, generateName, namespace, labels, annotations, uid, resourceVersion, generation
        case creationTimestamp, deletionTimestamp, deletionGracePeriodSeconds, finalizers, ownerReferences
        case managedFields
    }

    /// A name is required unless `generateName` asks the server to make one.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        generateName = try container.decodeIfPresent(String.self, forKey: .generateName)
        if generateName != nil {
            name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
        } else {
            name = try container.decode(String.self, forKey: .name)
        }
        namespace = try container.decodeIfPresent(String.self, forKey: .namespace)
        labels = try container.decodeIfPresent([String: String].self, forKey: .labels)
        annotations = try container.decodeIfPresent([String: String].self, forKey: .annotations)
        uid = try container.decodeIfPresent(String.self, forKey: .uid)
        resourceVersion = try container.decodeIfPresent(String.self, forKey: .resourceVersion)
        generation = try container.decodeIfPresent(Int64.self, forKey: .generation)
        creationTimestamp = try container.decodeIfPresent(String.self, forKey: .creationTimestamp)
        deletionTimestamp = try container.decodeIfPresent(String.self, forKey: .deletionTimestamp)
        deletionGracePeriodSeconds = try container.decodeIfPresent(Int64.self, forKey: .deletionGracePeriodSeconds)
        finalizers = try container.decodeIfPresent([String].self, forKey: .finalizers)
        ownerReferences = try container.decodeIfPresent([OwnerReference].self, forKey: .ownerReferences)
        managedFields = try container.decodeIfPresent([ManagedFieldsEntry].self, forKey: .managedFields)
    }

    public static let fieldDescriptions = [
        "name": "Unique name of the object (DNS-1123 subdomain: lowercase letters, digits, '-' and '.').",
        "labels": "Key/value pairs used by selectors, e.g. to place routes and actions on runners.",
        "resourceVersion": "Opaque version of the object, set by the server; sent back for compare-and-set updates.",
        "generation": "Incremented by the server on every change of the desired state (not of status or metadata).",
    ]
}

/// Points to an object that owns this one; the owner's deletion cascades.
public struct OwnerReference: Codable, Sendable, Equatable {
    public var apiVersion: String
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool?
    public var blockOwnerDeletion: Bool?
}

/// Which manager owns which fields, as server-side apply records it.
public struct ManagedFieldsEntry: Codable, Sendable, Equatable {
    public var manager: String?
    public var operation: String?
    public var apiVersion: String?
    public var time: String?
    public var fieldsType: String?
    public var fieldsV1: JSONValue?
    public var subresource: String?

    public init(
        manager: String?, operation: String?, apiVersion: String?, time: String?, fieldsV1: JSONValue?,
        subresource: String? = nil
    ) {
        self.manager = manager
        self.operation = operation
        self.apiVersion = apiVersion
        self.time = time
        self.fieldsType = "FieldsV1"
        self.fieldsV1 = fieldsV1
        self.subresource = subresource
    }
}
