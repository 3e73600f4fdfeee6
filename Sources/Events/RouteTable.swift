import Foundation
import Mustache
import Resources
import Routing

/// The routes, actions and templates of one configuration revision, compiled once: what every event is evaluated
/// against until the configuration changes.
///
/// The controller builds it from every Route, with the actions no Assignment places on a runner as its local
/// actions; an agent builds it from its slice, with the actions placed on it as local and the route's other
/// actions as ``CompiledRoute/upstreamActions``, which the controller runs once the event is handed up.
public struct RouteTable: Sendable {
    /// One route, ready to evaluate.
    public struct CompiledRoute: Sendable {
        public var name: String
        public var input: Routing.Expression
        public var dedupKeys: [Routing.Expression]
        /// The dedup window in milliseconds; nil without dedup.
        public var dedupWindow: Int64?
        /// Count and timeout (milliseconds) of aggregation; nil without it.
        public var aggregate: (count: Int?, timeout: Int64?)?
        public var template: CompiledTemplate
        public var serializeActions: Bool
        /// The route's actions that run where the table was built, in declared order.
        public var localActions: [String]
        /// The route's actions that run upstream, on the controller, in declared order.
        public var upstreamActions: [String]
    }

    /// What a route or action could not be compiled from, named so it can be logged; the route is left out.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public var object: String
        public var message: String
        public var description: String { "\(object): \(message)" }
    }

    /// The configuration revision the table was built from.
    public let revision: Int64
    /// The routes, sorted by name.
    public let routes: [CompiledRoute]
    /// Every action, decoded, by name.
    public let actions: [String: ActionSpec]
    /// The templates of actions that have their own (an http body, an email subject), compiled, by action name.
    public let actionTemplates: [String: ActionTemplates]
    /// The actions that run here.
    public let localActions: Set<String>
    /// Secret values by secret name and key.
    public let secrets: [String: Secret]
    /// What was left out.
    public let problems: [Problem]
    /// Which routes an event can match, found by hashing instead of evaluating every route.
    let index: RouteIndex

    /// A table with nothing in it.
    public static let empty = RouteTable(
        revision: 0, routes: [], actions: [:], actionTemplates: [:], localActions: [], secrets: [:], problems: [])

    init(
        revision: Int64, routes: [CompiledRoute], actions: [String: ActionSpec],
        actionTemplates: [String: ActionTemplates], localActions: Set<String>, secrets: [String: Secret],
        problems: [Problem]
    ) {
        self.revision = revision
        self.routes = routes
        self.actions = actions
        self.actionTemplates = actionTemplates
        self.localActions = localActions
        self.secrets = secrets
        self.problems = problems
        index = RouteIndex(routes.map(\.input))
    }

    /// Compiles the given objects (whole objects as stored, by name).
    ///
    /// - Parameters:
    ///   - isLocal: whether an action runs here.
    ///   - compiled: where compiled expressions and templates are kept, so an unchanged route is not compiled again.
    public static func build(
        revision: Int64, routes: [String: JSONValue], actions: [String: JSONValue], templates: [String: JSONValue],
        secrets: [String: JSONValue], isLocal: (String) -> Bool, compiled: CompiledCache
    ) -> RouteTable {
        var problems: [Problem] = []
        let decoder = StrictDecoder()
        var decodedActions: [String: ActionSpec] = [:]
        var actionTemplates: [String: ActionTemplates] = [:]
        for (name, object) in actions {
            guard let spec = object["spec"] else { continue }
            do {
                let action = try decoder.decode(ActionSpec.self, from: spec)
                let templates = try ActionTemplates(action, compiled: compiled)
                decodedActions[name] = action
                if !templates.isEmpty { actionTemplates[name] = templates }
            } catch {
                problems.append(Problem(object: "action/\(name)", message: "\(error)"))
            }
        }
        var decodedSecrets: [String: Secret] = [:]
        for (name, object) in secrets {
            if let secret = try? decoder.decode(Secret.self, from: object) { decodedSecrets[name] = secret }
        }
        var compiledRoutes: [CompiledRoute] = []
        for (name, object) in routes.sorted(by: { $0.key < $1.key }) {
            do {
                guard let specValue = object["spec"] else { continue }
                let spec = try decoder.decode(RouteSpec.self, from: specValue)
                let template = try CompiledTemplate.make(
                    name: spec.template, templates: templates, compiled: compiled)
                var aggregate: (Int?, Int64?)?
                if let value = spec.aggregate {
                    aggregate = (value.count, value.timeout.map { Int64(($0.seconds * 1000).rounded()) })
                }
                compiledRoutes.append(
                    CompiledRoute(
                        name: name, input: try compiled.expression(spec.input ?? ""),
                        dedupKeys: try (spec.dedup?.keys ?? []).map { try compiled.expression($0) },
                        dedupWindow: spec.dedup.map { Int64(($0.window.seconds * 1000).rounded()) },
                        aggregate: aggregate, template: template, serializeActions: spec.serializeActions ?? false,
                        localActions: spec.actions.filter { isLocal($0) && decodedActions[$0] != nil },
                        upstreamActions: spec.actions.filter { !isLocal($0) }))
            } catch {
                problems.append(Problem(object: "route/\(name)", message: "\(error)"))
            }
        }
        return RouteTable(
            revision: revision, routes: compiledRoutes, actions: decodedActions, actionTemplates: actionTemplates,
            localActions: Set(decodedActions.keys.filter(isLocal)), secrets: decodedSecrets, problems: problems)
    }

    /// The value of a secret key, or an error naming what is missing.
    func secretValue(_ selector: SecretKeySelector) throws(DeliveryFailure) -> String {
        guard let secret = secrets[selector.name] else {
            throw DeliveryFailure(permanent: "secret \(selector.name) is missing")
        }
        guard let value = secret.value(forKey: selector.key) else {
            throw DeliveryFailure(permanent: "secret \(selector.name) has no key \(selector.key)")
        }
        return value
    }

    /// A header or environment value, inline or from its secret.
    func resolve(_ value: ActionSpec.NamedValue) throws(DeliveryFailure) -> String {
        if let selector = value.valueFrom?.secretKeyRef { return try secretValue(selector) }
        return value.value ?? ""
    }
}

extension RouteTable {
    /// The routes whose input matches `event`, in the table's order.
    func matchingRoutes(_ event: JSONValue) -> [CompiledRoute] {
        index.candidates(for: event).compactMap { position in
            routes[position].input.matches(event) ? routes[position] : nil
        }
    }

    /// The message `action` delivers for a route's rendered `message`: as it is, unless the action has templates of
    /// its own, rendered over the same event (`input`) in place of the body (http) or of the title (email subject).
    func message(_ message: RenderedMessage, for action: String, input: JSONValue) -> RenderedMessage {
        guard let templates = actionTemplates[action] else { return message }
        let context: [String: Any] = ["input": input.mustacheValue]
        var rendered = message
        if let body = templates.body { rendered.body = Array(body.render(context).utf8) }
        if let subject = templates.subject { rendered.title = subject.render(context) }
        return rendered
    }
}

extension RouteTable.CompiledRoute {
    /// The route's dedup key for `input`: its keys' values as one JSON array, or nil when the route has no dedup.
    /// A key that cannot be evaluated (a missing field) counts as null, so such events still deduplicate.
    func dedupKey(for input: JSONValue) -> String? {
        guard dedupWindow != nil else { return nil }
        let values = dedupKeys.map { (try? $0.evaluate(input: input)) ?? .null }
        return String(decoding: JSONValue.array(values).jsonData(), as: UTF8.self)
    }
}

/// A route's template, compiled: how an event becomes the message its actions deliver.
public enum CompiledTemplate: Sendable {
    /// The event as compact JSON.
    case rawJSON
    /// A mustache body (HTML-escaped) or a text body (not escaped), with an optional title.
    case mustache(title: MustacheTemplate?, body: MustacheTemplate)

    /// Text bodies are mustache with HTML escaping turned off.
    static let textPragma = "{{% CONTENT_TYPE: TEXT}}"

    static func make(
        name: String?, templates: [String: JSONValue], compiled: CompiledCache
    ) throws -> CompiledTemplate {
        guard let name else { return .rawJSON }
        guard let object = templates[name], let specValue = object["spec"] else {
            throw DeliveryFailure(permanent: "template \(name) does not exist")
        }
        let spec = try StrictDecoder().decode(TemplateSpec.self, from: specValue)
        let prefix = spec.type == .text ? textPragma : ""
        switch spec.type {
        case .rawJSON:
            return .rawJSON
        case .mustache, .text:
            let body = try compiled.template(prefix + (spec.body ?? ""), field: "spec.body")
            let title = try spec.title.map { try compiled.template(prefix + $0, field: "spec.title") }
            return .mustache(title: title, body: body)
        }
    }

    /// Renders `event`; mustache sees it as `input`.
    public func render(_ event: JSONValue, raw: [UInt8]) -> RenderedMessage {
        switch self {
        case .rawJSON:
            return RenderedMessage(title: nil, body: raw)
        case .mustache(let title, let body):
            let context: [String: Any] = ["input": event.mustacheValue]
            return RenderedMessage(
                title: title?.render(context), body: Array(body.render(context).utf8))
        }
    }
}

/// An action's own templates, compiled as text (no HTML escaping): a JSON body keeps its quotes.
public struct ActionTemplates: Sendable {
    /// `spec.http.body`: what an http action sends instead of the route's message.
    public var body: MustacheTemplate?
    /// `spec.email.subject`: the subject, instead of the route template's title.
    public var subject: MustacheTemplate?

    init(_ action: ActionSpec, compiled: CompiledCache) throws(FieldError) {
        let prefix = CompiledTemplate.textPragma
        if action.type == .http, let source = action.http?.body {
            body = try compiled.template(prefix + source, field: "spec.http.body")
        }
        if action.type == .email, let source = action.email?.subject {
            subject = try compiled.template(prefix + source, field: "spec.email.subject")
        }
    }

    var isEmpty: Bool { body == nil && subject == nil }
}

/// A rendered event: the body actions deliver, and a title for actions that show one.
public struct RenderedMessage: Sendable, Equatable {
    public var title: String?
    public var body: [UInt8]

    public init(title: String?, body: [UInt8]) {
        self.title = title
        self.body = body
    }
}

extension JSONValue {
    /// The value as mustache renders it: dictionaries, arrays and scalars.
    var mustacheValue: Any {
        switch self {
        case .null: return ""
        case .bool(let flag): return flag
        case .int(let number): return Int(number)
        case .double(let number): return number
        case .string(let text): return text
        case .array(let items): return items.map(\.mustacheValue)
        case .object(let members): return members.mapValues(\.mustacheValue)
        }
    }
}
