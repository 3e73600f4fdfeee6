/// How an event is rendered for actions.
public struct TemplateSpec: ResourceSpec, FieldDocumented {
    public enum TemplateType: String, SchemaEnum {
        case rawJSON = "raw-json"
        case mustache
        case text
    }

    public struct Status: ResourceStatus {
        public var observedGeneration: Int64?
        public var conditions: [Condition]?
        public init() {}
    }

    public static let kind = "Template"
    public static let plural = "templates"
    public static let shortNames = ["tpl"]

    public var type: TemplateType
    public var title: String?
    public var body: String?

    public init(type: TemplateType, title: String? = nil, body: String? = nil) {
        self.type = type
        self.title = title
        self.body = body
    }

    public func validate() -> [FieldError] {
        if type != .rawJSON && (body ?? "").isEmpty {
            return [FieldError(path: "body", reason: .required, message: "required for type \(type.rawValue)")]
        }
        return []
    }

    public static let fieldDescriptions = [
        "type": "raw-json (the event as JSON), mustache, or text (mustache without HTML escaping).",
        "title": "Optional title template, used by chat actions.",
        "body": "The template body.",
    ]
}
