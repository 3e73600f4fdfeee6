import Foundation
import Resources

/// The text of `steady describe`: identity, labels and annotations, generations, a readable spec, conditions,
/// kind-specific status and which managers changed the object when.
///
/// Secret values never appear: Secrets are described by their keys only.
public enum ObjectDescriber {
    /// Annotation values longer than this are cut.
    static let annotationLimit = 100

    /// The description of one object.
    public static func describe(_ object: JSONValue, info: KindInfo, now: Date = Date()) -> String {
        var out = Output()
        let metadata = object["metadata"]
        out.field("Name", metadata?["name"]?.stringValue ?? "")
        out.field("Kind", info.kind)
        out.field("API Version", object["apiVersion"]?.stringValue ?? info.apiVersion)
        out.map("Labels", strings(metadata?["labels"]), limit: nil)
        out.map("Annotations", strings(metadata?["annotations"]), limit: annotationLimit)
        if let created = metadata?["creationTimestamp"]?.stringValue {
            out.field("Created", "\(created) (\(HumanDuration.age(of: created, now: now)) ago)")
        }
        if let deleting = metadata?["deletionTimestamp"]?.stringValue {
            out.field("Deleting Since", "\(deleting) (\(HumanDuration.age(of: deleting, now: now)) ago)")
        }
        let finalizers = (metadata?["finalizers"]?.arrayValue ?? []).compactMap(\.stringValue)
        if !finalizers.isEmpty { out.field("Finalizers", finalizers.joined(separator: ", ")) }
        if let uid = metadata?["uid"]?.stringValue { out.field("UID", uid) }
        if let version = metadata?["resourceVersion"]?.stringValue { out.field("Resource Version", version) }
        if let generation = metadata?["generation"]?.intValue {
            var text = String(generation)
            if info.hasStatus {
                if let observed = object["status"]?["observedGeneration"]?.intValue {
                    text += " (observed: \(observed)\(observed < generation ? ", not yet reconciled" : ""))"
                } else {
                    text += " (observed: <none>)"
                }
            }
            out.field("Generation", text)
        }

        if info.kind == Secret.kind {
            describeSecret(object, into: &out)
        } else if let spec = object["spec"] {
            out.line("Spec:")
            out.value(spec, indent: 1)
        }

        if info.hasStatus {
            describeStatus(object, info: info, into: &out, now: now)
            describeConditions(object, into: &out, now: now)
        }
        describeManagers(object, into: &out, now: now)
        return out.text
    }

    // MARK: Sections

    private static func describeSecret(_ object: JSONValue, into out: inout Output) {
        out.field("Type", object["type"]?.stringValue ?? "Opaque")
        if object["immutable"]?.boolValue == true { out.field("Immutable", "true") }
        let keys = (object["data"]?.objectValue ?? [:]).keys.sorted()
        out.line("Data:")
        if keys.isEmpty {
            out.line("  <none>")
        }
        for key in keys {
            // Values are never shown, even when the server revealed them.
            out.line("  \(key):  <redacted>")
        }
    }

    private static func describeStatus(_ object: JSONValue, info: KindInfo, into out: inout Output, now: Date) {
        guard var status = object["status"]?.objectValue else {
            out.line("Status:  <none reported yet>")
            return
        }
        status["conditions"] = nil
        status["observedGeneration"] = nil
        let results = info.kind == "RemoteRun" ? status.removeValue(forKey: "results")?.arrayValue : nil
        if !status.isEmpty {
            out.line("Status:")
            out.value(.object(status), indent: 1)
        }
        if let results {
            out.line("Results:")
            if results.isEmpty {
                out.line("  <none>")
            } else {
                let rows = results.map { result -> [String] in
                    let start = result["startTime"]?.stringValue
                    let end = result["completionTime"]?.stringValue
                    return [
                        result["runner"]?.stringValue ?? "",
                        result["phase"]?.stringValue ?? "",
                        result["exitCode"]?.intValue.map { String($0) } ?? "",
                        start.map { HumanDuration.age(of: $0, now: now) + " ago" } ?? "",
                        duration(from: start, to: end),
                        result["outputBytes"]?.intValue.map { "\($0)B" } ?? "",
                        Wording.truncate(Wording.singleLine(result["message"]?.stringValue ?? ""), to: 60),
                    ]
                }
                let table = TextTable(
                    headers: ["RUNNER", "PHASE", "EXIT", "STARTED", "DURATION", "OUTPUT", "MESSAGE"], rows: rows)
                for line in table.render() { out.line("  " + line) }
            }
        }
    }

    private static func describeConditions(_ object: JSONValue, into out: inout Output, now: Date) {
        let conditions = object["status"]?["conditions"]?.arrayValue ?? []
        out.line("Conditions:")
        guard !conditions.isEmpty else {
            out.line("  <none>")
            return
        }
        let generation = object["metadata"]?["generation"]?.intValue
        let rows = conditions.map { condition -> [String] in
            var status = condition["status"]?.stringValue ?? ""
            if let observed = condition["observedGeneration"]?.intValue, let generation, observed < generation {
                status += " (stale)"
            }
            return [
                condition["type"]?.stringValue ?? "",
                status,
                condition["reason"]?.stringValue ?? "",
                HumanDuration.age(of: condition["lastTransitionTime"]?.stringValue, now: now),
                Wording.singleLine(condition["message"]?.stringValue ?? ""),
            ]
        }
        let table = TextTable(headers: ["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows: rows)
        for line in table.render() { out.line("  " + line) }
    }

    private static func describeManagers(_ object: JSONValue, into out: inout Output, now: Date) {
        let entries = object["metadata"]?["managedFields"]?.arrayValue ?? []
        out.line("Recent changes:")
        guard !entries.isEmpty else {
            out.line("  <none>")
            return
        }
        let sorted = entries.sorted {
            ($0["time"]?.stringValue ?? "") > ($1["time"]?.stringValue ?? "")
        }
        let rows = sorted.map { entry -> [String] in
            let time = entry["time"]?.stringValue
            return [
                entry["manager"]?.stringValue ?? "",
                entry["operation"]?.stringValue ?? "",
                entry["subresource"]?.stringValue ?? "",
                time.map { HumanDuration.age(of: $0, now: now) + " ago" } ?? "",
                time ?? "",
            ]
        }
        let table = TextTable(headers: ["MANAGER", "OPERATION", "SUBRESOURCE", "AGE", "TIME"], rows: rows)
        for line in table.render() { out.line("  " + line) }
    }

    // MARK: Helpers

    private static func strings(_ value: JSONValue?) -> [(String, String)] {
        let members = value?.objectValue ?? [:]
        return members.keys.sorted().map { key in
            (key, members[key]?.stringValue ?? members[key].map { $0.jsonString() } ?? "")
        }
    }

    private static func duration(from start: String?, to end: String?) -> String {
        guard let start, let end, let from = Timestamp.parse(start), let to = Timestamp.parse(end) else { return "" }
        return HumanDuration.format(seconds: to.timeIntervalSince(from))
    }

    /// `serializeActions` → `Serialize Actions`, as kubectl describes custom resources.
    static func label(_ key: String) -> String {
        var words: [String] = []
        var current = ""
        let characters = Array(key)
        for (index, character) in characters.enumerated() {
            let nextIsLower = index + 1 < characters.count && characters[index + 1].isLowercase
            let previousIsLower = index > 0 && (characters[index - 1].isLowercase || characters[index - 1].isNumber)
            if character.isUppercase && !current.isEmpty && (previousIsLower || nextIsLower) {
                words.append(current)
                current = ""
            }
            current.append(character)
        }
        if !current.isEmpty { words.append(current) }
        return words.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: " ")
    }

    /// Builds the text line by line, aligning `Label:  value` fields as kubectl does.
    private struct Output {
        var text = ""
        let labelWidth = 20

        mutating func line(_ line: String) {
            text += line + "\n"
        }

        mutating func field(_ name: String, _ value: String) {
            let label = name + ":"
            line(label + String(repeating: " ", count: max(2, labelWidth - label.count)) + value)
        }

        mutating func map(_ name: String, _ pairs: [(String, String)], limit: Int?) {
            guard let first = pairs.first else {
                field(name, "<none>")
                return
            }
            func render(_ pair: (String, String)) -> String {
                let value = limit.map { Wording.truncate(Wording.singleLine(pair.1), to: $0) } ?? pair.1
                return "\(pair.0)=\(value)"
            }
            field(name, render(first))
            for pair in pairs.dropFirst() {
                line(String(repeating: " ", count: labelWidth) + render(pair))
            }
        }

        /// A nested value: objects as indented `Label:  value` lines, lists of scalars joined, lists of objects
        /// as indented blocks.
        mutating func value(_ value: JSONValue, indent: Int) {
            let pad = String(repeating: "  ", count: indent)
            switch value {
            case .object(let members):
                if members.isEmpty {
                    line(pad + "<none>")
                }
                // Values of one block start in the same column, as kubectl aligns them.
                let width = members.keys.map { ObjectDescriber.label($0).count + 1 }.max() ?? 0
                func padded(_ name: String) -> String {
                    name + String(repeating: " ", count: width - name.count + 2)
                }
                for key in members.keys.sorted() {
                    guard let member = members[key] else { continue }
                    let name = ObjectDescriber.label(key) + ":"
                    if let scalar = Output.scalar(member) {
                        if scalar.contains("\n") {
                            line(pad + name)
                            for part in scalar.split(separator: "\n", omittingEmptySubsequences: false) {
                                line(pad + "    " + part)
                            }
                        } else {
                            line(pad + padded(name) + scalar)
                        }
                    } else if let items = member.arrayValue, items.allSatisfy({ Output.scalar($0) != nil }) {
                        let joined = items.compactMap(Output.scalar).joined(separator: ", ")
                        line(pad + padded(name) + (joined.isEmpty ? "<none>" : joined))
                    } else {
                        line(pad + name)
                        self.value(member, indent: indent + 1)
                    }
                }
            case .array(let items):
                for (index, item) in items.enumerated() {
                    if let scalar = Output.scalar(item) {
                        line(pad + scalar)
                    } else {
                        line(pad + "[\(index)]:")
                        self.value(item, indent: indent + 1)
                    }
                }
            default:
                line(pad + (Output.scalar(value) ?? ""))
            }
        }

        static func scalar(_ value: JSONValue) -> String? {
            switch value {
            case .null: "<none>"
            case .bool(let flag): flag ? "true" : "false"
            case .int(let number): String(number)
            case .double(let number): String(number)
            case .string(let text): text
            case .array, .object: nil
            }
        }
    }
}
