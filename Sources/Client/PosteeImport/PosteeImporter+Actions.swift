import Foundation
import Resources
import Yams

extension PosteeImporter {
    /// Action types of Postee that steady has no transport for.
    static let supportedActionTypes: Set = [
        "stdout", "webhook", "slack", "teams", "http", "exec", "email", "pagerduty",
    ]

    /// The field each type cannot do without.
    static let requiredActionFields = [
        "webhook": ["url"], "slack": ["url"], "teams": ["url"], "http": ["url"], "pagerduty": ["routing-key"],
        "exec": ["exec-script", "input-file"], "email": ["host"],
    ]

    mutating func importAction(_ node: Node) {
        guard let original = node["name"]?.string, !original.isEmpty else {
            warn(node, "action", "an action without a name; not imported")
            return
        }
        let subject = "action \"\(original)\""
        let type = (node["type"]?.string ?? "").lowercased()
        if node["enable"]?.bool == false {
            skippedActions[original] = "it is disabled (enable: false)"
            warn(node, subject, "disabled (enable: false); not imported")
            return
        }
        guard Self.supportedActionTypes.contains(type) else {
            let reason = type.isEmpty ? "it has no type" : "steady has no \(type) action"
            skippedActions[original] = reason
            warn(node["type"] ?? node, subject, "\(reason); not imported")
            return
        }
        if let fields = Self.requiredActionFields[type], !fields.contains(where: { hasText(node[$0]) }) {
            let missing = fields.joined(separator: " or ")
            skippedActions[original] = "it has no \(missing)"
            warn(node, subject, "\(missing) is missing or empty; not imported")
            return
        }
        let name = uniqueName(original, kind: "Action", node: node, subject: subject)
        var spec: [String: JSONValue] = [:]
        var secretData: [String: String] = [:]
        let secretName = "postee-\(name)".prefix(63).trimmingCharacters(in: ["-"])
        func secretRef(_ key: String, _ value: String) -> JSONValue {
            secretData[key] = value
            return ["secretKeyRef": ["name": .string(secretName), "key": .string(key)]]
        }
        var known: Set = ["name", "type", "enable", "runs-on", "timeout"]
        switch type {
        case "stdout":
            spec["stdout"] = [:]
        case "webhook", "slack", "teams":
            known.insert("url")
            let url = text(node["url"])
            // Chat webhook URLs carry their credential; a generic webhook's URL is written as it is.
            spec[type] = type == "webhook" ? ["url": .string(url)] : ["urlFrom": secretRef("url", url)]
        case "http":
            known.formUnion(["url", "method", "headers", "body-content", "body-file"])
            let url = text(node["url"])
            var http: [String: JSONValue] = ["url": .string(url), "method": .string(node["method"]?.string ?? "POST")]
            var headers: [JSONValue] = []
            for (key, value) in node["headers"]?.mapping ?? [:] {
                let values = value.sequence?.compactMap(\.string) ?? [value.string].compactMap { $0 }
                headers.append(["name": .string(key.string ?? ""), "value": .string(values.joined(separator: ", "))])
            }
            if !headers.isEmpty { http["headers"] = .array(headers) }
            if let body = node["body-content"]?.string { http["body"] = .string(body) }
            if let file = node["body-file"] {
                warn(file, subject, "body-file is not read at import; put its content in http.body")
            }
            spec["http"] = .object(http)
        case "exec":
            known.formUnion(["exec-script", "input-file", "env"])
            let command =
                hasText(node["exec-script"])
                ? ["/bin/sh", "-c", node["exec-script"]?.string ?? ""] : [text(node["input-file"])]
            if command.joined(separator: " ").contains("POSTEE_EVENT") {
                warn(
                    node, subject,
                    "the command reads $POSTEE_EVENT; steady passes the rendered message on standard input instead")
            }
            var exec: [String: JSONValue] = ["command": .array(command.map(JSONValue.string))]
            var env: [JSONValue] = []
            for entry in node["env"]?.sequence ?? [] {
                let text = entry.string ?? ""
                guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                    warn(entry, subject, "env entry \"\(text)\" is not NAME=value; not imported")
                    continue
                }
                env.append([
                    "name": .string(String(text[..<equals])),
                    "value": .string(String(text[text.index(after: equals)...])),
                ])
            }
            if !env.isEmpty { exec["env"] = .array(env) }
            spec["exec"] = .object(exec)
        case "email":
            known.formUnion(["host", "port", "user", "password", "sender", "recipients", "use-mx"])
            var email: [String: JSONValue] = [
                "host": .string(node["host"]?.string ?? ""), "from": .string(node["sender"]?.string ?? ""),
                "to": .array((node["recipients"]?.sequence ?? []).compactMap(\.string).map(JSONValue.string)),
            ]
            if let port = node["port"]?.int {
                email["port"] = .int(Int64(port))
                if port == 465 {
                    warn(
                        node["port"] ?? node, subject, "port 465 is implicit TLS, which steady does not speak; use 587")
                }
            }
            if node["use-mx"]?.bool == true {
                warn(
                    node["use-mx"] ?? node, subject, "use-mx (delivery straight to MX hosts) is not supported; set host"
                )
            }
            if let user = node["user"]?.string, !user.isEmpty {
                email["username"] = .string(user)
                email["passwordFrom"] = secretRef("password", node["password"]?.string ?? "")
            }
            spec["email"] = .object(email)
        case "pagerduty":
            known.formUnion(["routing-key", "auth-token"])
            spec["pagerduty"] = ["routingKeyFrom": secretRef("routing-key", text(node["routing-key"]))]
            if let token = node["auth-token"] {
                warn(token, subject, "auth-token is not needed by the Events API v2; not imported")
            }
        default:
            break
        }
        spec["type"] = .string(type)
        if let timeout = node["timeout"], let duration = duration(timeout, subject: subject) {
            spec["timeout"] = .string(duration)
        }
        warnUnknownKeys(node, known: known, subject: subject)
        if !secretData.isEmpty {
            secrets.append(
                [
                    "apiVersion": .string(API.apiVersion), "kind": "Secret", "metadata": ["name": .string(secretName)],
                    "stringData": .object(secretData.mapValues(JSONValue.string)),
                ])
        }
        actions.append(Self.object("Action", name, spec: .object(spec)))
        actionNames[original] = name
        if let runner = node["runs-on"]?.string, !runner.isEmpty {
            let runnerName = runnerName(runner, node: node["runs-on"] ?? node, subject: subject)
            if let index = runnerActions.firstIndex(where: { $0.runner == runnerName }) {
                runnerActions[index].actions.append(name)
            } else {
                runnerActions.append((runnerName, [name]))
            }
        }
    }

    /// The runner's steady name; the same Postee runner always gets the same one.
    private mutating func runnerName(_ runner: String, node: Node, subject: String) -> String {
        if let known = runnerNames[runner] { return known }
        let name = uniqueName(runner, kind: "Runner", node: node, subject: "\(subject) runs-on")
        runnerNames[runner] = name
        return name
    }

    private func hasText(_ node: Node?) -> Bool { !text(node).isEmpty }

    private func text(_ node: Node?) -> String { node?.string?.trimmingCharacters(in: .whitespaces) ?? "" }
}
