import Foundation
import Resources
import Yams

/// Turns a Postee configuration (`cfg.yaml`: routes, templates, actions or outputs, `runs-on`) into steady
/// manifests: Routes, Templates, Actions with their Secrets, Runners and Assignments.
///
/// Whatever cannot be carried over exactly (a Rego construct, a template rendered by Rego, an action type steady
/// lacks, an unknown field) becomes a warning naming the construct and its line; nothing is dropped silently.
/// A route whose input cannot be translated is kept with `input: "false"` and its Rego in an annotation, so it
/// matches nothing until it is rewritten.
public struct PosteeImporter {
    /// The annotation that keeps a route's untranslated Rego input.
    public static let untranslatedInputAnnotation = "import.steady.dev/postee-input"

    /// A configuration that is not a Postee configuration at all.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    let file: String
    var warnings: [PosteeImportWarning] = []
    var secrets: [JSONValue] = []
    var templates: [JSONValue] = []
    var actions: [JSONValue] = []
    var routes: [JSONValue] = []
    /// Postee template names to the steady template that replaces them (nil: none, the raw event).
    var templateNames: [String: String?] = [:]
    /// Postee action names to the steady action, for those carried over.
    var actionNames: [String: String] = [:]
    /// Postee actions that were left out, with why, so routes can say so.
    var skippedActions: [String: String] = [:]
    /// Steady action names by the runner they run on (`runs-on`), in order of appearance.
    var runnerActions: [(runner: String, actions: [String])] = []
    var usedNames: [String: Set<String>] = [:]
    /// Postee runner names to steady Runner names.
    var runnerNames: [String: String] = [:]

    /// Translates the Postee configuration `yaml`, read from `file` (named in warnings).
    /// - Throws: ``Failure`` when the text is not YAML or not a Postee configuration.
    public static func translate(_ yaml: String, file: String) throws(Failure) -> PosteeImport {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw Failure(description: "\(file): not valid YAML: \(error)")
        }
        guard let root, let mapping = root.mapping else {
            throw Failure(
                description: "\(file): a Postee configuration is a mapping with routes, templates and actions")
        }
        var importer = PosteeImporter(file: file)
        let actionsKey = mapping["actions"] != nil ? "actions" : "outputs"
        for (key, value) in mapping {
            let name = key.string ?? ""
            if !["routes", "templates", "actions", "outputs"].contains(name) {
                importer.warn(
                    value, "setting \"\(name)\"", "Postee server settings have no steady equivalent; not imported")
            }
        }
        for node in mapping["templates"]?.sequence ?? [] { importer.importTemplate(node) }
        for node in mapping[actionsKey]?.sequence ?? [] { importer.importAction(node) }
        for node in mapping["routes"]?.sequence ?? [] { importer.importRoute(node) }
        if mapping["routes"]?.sequence == nil {
            importer.warn(root, "configuration", "no routes: nothing will match events")
        }
        return importer.result()
    }

    private func result() -> PosteeImport {
        var runners: [JSONValue] = []
        for (runner, actionNames) in runnerActions {
            runners.append(Self.object("Runner", runner, spec: nil))
            let placed = Set(actionNames)
            let routeNames = routes.compactMap { route -> String? in
                let used = route["spec"]?["actions"]?.arrayValue?.compactMap(\.stringValue) ?? []
                return used.contains(where: placed.contains) ? route["metadata"]?["name"]?.stringValue : nil
            }
            var spec: JSONValue = ["runners": [.string(runner)], "actions": .array(actionNames.map(JSONValue.string))]
            if !routeNames.isEmpty { spec["routes"] = .array(routeNames.map(JSONValue.string)) }
            runners.append(Self.object("Assignment", runner, spec: spec))
        }
        let files = [
            PosteeImport.File(name: "secrets.yaml", objects: secrets),
            PosteeImport.File(name: "templates.yaml", objects: templates),
            PosteeImport.File(name: "actions.yaml", objects: actions),
            PosteeImport.File(name: "routes.yaml", objects: routes),
            PosteeImport.File(name: "runners.yaml", objects: runners),
        ].filter { !$0.objects.isEmpty }
        // In the order of the file, as an editor would go through them.
        let ordered = warnings.enumerated().sorted { left, right in
            let (l, r) = (left.element.line ?? 0, right.element.line ?? 0)
            return l != r ? l < r : left.offset < right.offset
        }.map(\.element)
        return PosteeImport(files: files, warnings: ordered)
    }

    // MARK: - Templates

    private mutating func importTemplate(_ node: Node) {
        guard let original = node["name"]?.string, !original.isEmpty else {
            warn(node, "template", "a template without a name; not imported")
            return
        }
        let subject = "template \"\(original)\""
        let regoPackage = node["rego-package"]?.string
        let body = node["body"]?.string?.trimmingCharacters(in: .whitespacesAndNewlines)
        if regoPackage == "postee.rawmessage.json" || body == "input" {
            let name = uniqueName(original, kind: "Template", node: node, subject: subject)
            templates.append(Self.object("Template", name, spec: ["type": "raw-json"]))
            templateNames[original] = .some(name)
        } else {
            var how = "has no rego-package, body or url"
            if let regoPackage {
                how = "renders with the Rego package \(regoPackage)"
            } else if body != nil {
                how = "renders with a Rego body"
            } else if let url = node["url"]?.string {
                how = "renders with Rego fetched from \(url)"
            } else if let legacy = node["legacy-scan-renderer"]?.string {
                how = "uses the legacy renderer \(legacy)"
            }
            warn(
                node, subject,
                "\(how), which steady cannot translate; not imported: routes using it send the raw event until a "
                    + "mustache Template replaces it")
            templateNames[original] = .some(nil)
        }
        let known: Set = ["name", "rego-package", "body", "url", "legacy-scan-renderer"]
        warnUnknownKeys(node, known: known, subject: subject)
    }

    // MARK: - Routes

    private mutating func importRoute(_ node: Node) {
        guard let original = node["name"]?.string, !original.isEmpty else {
            warn(node, "route", "a route without a name; not imported")
            return
        }
        let subject = "route \"\(original)\""
        var spec: [String: JSONValue] = [:]
        var annotations: [String: String] = [:]
        let actionNodes = node["actions"] ?? node["outputs"]
        var names: [String] = []
        for actionNode in actionNodes?.sequence ?? [] {
            guard let action = actionNode.string else { continue }
            if let name = actionNames[action] {
                if !names.contains(name) { names.append(name) }
            } else if let reason = skippedActions[action] {
                warn(actionNode, subject, "action \"\(action)\" is left out: \(reason)")
            } else {
                warn(actionNode, subject, "action \"\(action)\" is not defined in the configuration; left out")
            }
        }
        guard !names.isEmpty else {
            warn(node, subject, "no action of this route could be imported, so neither is the route")
            return
        }
        spec["actions"] = .array(names.map(JSONValue.string))
        if let inputNode = node["input"], let rego = inputNode.string,
            !rego.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        {
            do {
                let expression = try RegoTranslator.translate(rego)
                if !expression.isEmpty { spec["input"] = .string(expression) }
            } catch {
                spec["input"] = "false"
                annotations[Self.untranslatedInputAnnotation] = rego
                warn(
                    inputNode, subject,
                    "input cannot be translated (\(error.reason)); the route is written with input \"false\", matching "
                        + "nothing, and the Rego kept in the annotation \(Self.untranslatedInputAnnotation)")
            }
        }
        if let files = node["input-files"] {
            spec["input"] = "false"
            annotations[Self.untranslatedInputAnnotation] =
                (files.sequence ?? []).compactMap(\.string).joined(separator: ", ")
            warn(
                files, subject,
                "input-files (Rego files) cannot be translated; the route is written with input \"false\", matching "
                    + "nothing, and the file names kept in the annotation \(Self.untranslatedInputAnnotation)")
        }
        if let templateNode = node["template"], let template = templateNode.string {
            switch templateNames[template] {
            case .some(.some(let name)): spec["template"] = .string(name)
            case .some(.none):
                warn(templateNode, subject, "template \"\(template)\" was not imported; the route sends the raw event")
            case .none:
                warn(templateNode, subject, "template \"\(template)\" is not defined; the route sends the raw event")
            }
        }
        let serialize = node["serialize-actions"] ?? node["serialize-outputs"]
        if let serialize, let flag = serialize.bool { spec["serializeActions"] = .bool(flag) }
        if let plugins = node["plugins"] { importPlugins(plugins, into: &spec, subject: subject) }
        let known: Set = [
            "name", "input", "input-files", "actions", "outputs", "template", "serialize-actions",
            "serialize-outputs", "plugins",
        ]
        warnUnknownKeys(node, known: known, subject: subject)
        let name = uniqueName(original, kind: "Route", node: node, subject: subject)
        routes.append(Self.object("Route", name, spec: .object(spec), annotations: annotations))
    }

    private mutating func importPlugins(_ plugins: Node, into spec: inout [String: JSONValue], subject: String) {
        var aggregate: [String: JSONValue] = [:]
        var dedupKeys: [JSONValue] = []
        var dedupWindow: String?
        for (key, value) in plugins.mapping ?? [:] {
            switch key.string ?? "" {
            case "aggregate-message-number", "aggregate-issues-number":
                if let count = value.int, count > 0 {
                    aggregate["count"] = .int(Int64(count))
                } else {
                    warn(value, subject, "\(key.string ?? "") must be a positive number; not imported")
                }
            case "aggregate-message-timeout", "aggregate-issues-timeout":
                if let duration = duration(value, subject: subject) { aggregate["timeout"] = .string(duration) }
            case "unique-message-props":
                for property in value.sequence ?? [] {
                    guard let path = property.string, !path.isEmpty else { continue }
                    dedupKeys.append(.string(Self.inputPath(path)))
                }
            case "unique-message-timeout":
                dedupWindow = duration(value, subject: subject)
            default:
                warn(key, subject, "plugin \"\(key.string ?? "")\" has no steady equivalent; not imported")
            }
        }
        if !aggregate.isEmpty { spec["aggregate"] = .object(aggregate) }
        if !dedupKeys.isEmpty {
            if dedupWindow == nil {
                warn(plugins, subject, "unique-message-props without unique-message-timeout: the dedup window is 24h")
            }
            spec["dedup"] = ["keys": .array(dedupKeys), "window": .string(dedupWindow ?? "24h")]
        } else if dedupWindow != nil {
            warn(plugins, subject, "unique-message-timeout without unique-message-props; not imported")
        }
    }

    /// `vulnerability_summary.high` as `input.vulnerability_summary.high`, with `["…"]` for names that are not
    /// identifiers.
    static func inputPath(_ property: String) -> String {
        var path = "input"
        for part in property.split(separator: ".") {
            let isIdentifier =
                part.first.map { $0.isLetter || $0 == "_" } == true
                && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
            path += isIdentifier ? ".\(part)" : "[\"\(part.replacingOccurrences(of: "\"", with: "\\\""))\"]"
        }
        return path
    }

    /// A Postee duration (`30s`, `10m`, `1h`, `1d`, or a number of seconds) as a steady duration.
    mutating func duration(_ node: Node, subject: String) -> String? {
        let text = (node.string ?? "").trimmingCharacters(in: .whitespaces)
        if let seconds = Int(text), seconds > 0 { return "\(seconds)s" }
        let number = text.prefix { $0.isNumber }
        let unit = text.dropFirst(number.count)
        if let value = Int(number), value > 0 {
            switch unit {
            case "s", "m", "h": return "\(value)\(unit)"
            case "d": return "\(value * 24)h"
            case "w": return "\(value * 24 * 7)h"
            default: break
            }
        }
        warn(node, subject, "\"\(text)\" is not a duration steady understands (like 30s, 10m, 1h or 1d); not imported")
        return nil
    }

    // MARK: - Shared

    mutating func warn(_ node: Node, _ subject: String, _ message: String) {
        warnings.append(PosteeImportWarning(file: file, line: node.mark?.line, subject: subject, message: message))
    }

    mutating func warnUnknownKeys(_ node: Node, known: Set<String>, subject: String) {
        for (key, _) in node.mapping ?? [:] where !known.contains(key.string ?? "") {
            warn(key, subject, "field \"\(key.string ?? "")\" has no steady equivalent; not imported")
        }
    }

    /// A valid object name for `original`, unique within its kind; a changed name is reported.
    mutating func uniqueName(_ original: String, kind: String, node: Node, subject: String) -> String {
        var base = String(original.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" })
        while base.contains("--") { base = base.replacingOccurrences(of: "--", with: "-") }
        base = String(base.trimmingCharacters(in: ["-"]).prefix(60)).trimmingCharacters(in: ["-"])
        if base.isEmpty { base = kind.lowercased() }
        var name = base
        var counter = 2
        while usedNames[kind, default: []].contains(name) {
            name = "\(base)-\(counter)"
            counter += 1
        }
        usedNames[kind, default: []].insert(name)
        if name != original {
            warn(node, subject, "written as \(kind) \"\(name)\" (steady names are lowercase letters, digits and '-')")
        }
        return name
    }

    static func object(
        _ kind: String, _ name: String, spec: JSONValue?, annotations: [String: String] = [:]
    ) -> JSONValue {
        var metadata: JSONValue = ["name": .string(name)]
        if !annotations.isEmpty { metadata["annotations"] = .object(annotations.mapValues(JSONValue.string)) }
        var object: JSONValue = ["apiVersion": .string(API.apiVersion), "kind": .string(kind), "metadata": metadata]
        if let spec { object["spec"] = spec }
        return object
    }
}
