import Agent
import Client
import Foundation
import Mustache
import Resources
import Routing

/// One parser of hostile input, driven by arbitrary bytes. A target must never crash, hang or trip the address
/// sanitizer whatever the bytes; where a property holds for every input (a JSON round trip), it is checked with
/// `precondition`, so a counterexample is a crash the fuzzer reports.
enum FuzzTarget: String, CaseIterable {
    /// The JSON parser and writer: every document parsed is written and parsed back to an equal value.
    case json
    /// Manifest files (YAML or JSON streams) through strict decoding and admission of every kind.
    case manifest
    /// Route expressions: the first line is the expression, the rest an event it is evaluated on.
    case expression
    /// Template bodies: admission's bounds, then compilation and rendering over a small event.
    case template
    /// The agent stream, both ways: the controller's slice messages as the agent decodes them, and agent lines
    /// (reports and run messages) as the controller decodes them.
    case stream
    /// Join tokens and kubeconfigs.
    case credentials
    /// Label selectors, durations and count-or-percent values.
    case selector

    func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        switch self {
        case .json:
            guard let value = try? JSONValue.parse(Data(bytes)) else { return }
            let written = value.jsonData()
            guard let again = try? JSONValue.parse(written) else {
                preconditionFailure("the writer produced JSON the parser refuses: \(String(decoding: written, as: UTF8.self))")
            }
            precondition(again == value, "the JSON round trip changed the value")
        case .manifest:
            guard let documents = try? ManifestDocuments.parse(text, file: "fuzz.yaml") else { return }
            for document in documents {
                guard let kind = document.value["kind"]?.stringValue, let info = Kinds.info(forKind: kind) else {
                    continue
                }
                _ = try? Admission.admit(info, document.value)
            }
        case .expression:
            let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            guard let source = parts.first, let expression = try? Expression(String(source)) else { return }
            let event = parts.count > 1 ? (try? JSONValue.parse(Data(parts[1].utf8))) ?? .null : .null
            _ = try? expression.evaluate(input: event)
            _ = expression.matches(event)
        case .template:
            guard let template = try? TemplateCompiler.compile(text, field: "spec.body") else { return }
            _ = template.render(Self.templateContext)
        case .stream:
            var decoder = SliceStreamDecoder(maximumLineLength: 1 << 20)
            _ = try? decoder.items(from: bytes)
            for line in bytes.split(separator: 0x0A) {
                _ = try? RunAgentMessage.decode(line: line)
                _ = try? RunControllerMessage.decode(line: line)
                if let value = try? JSONValue.parse(Data(line)) {
                    _ = try? StrictDecoder().decode(AgentReport.self, from: value)
                }
            }
        case .credentials:
            _ = try? AgentJoinToken(parsing: text)
            _ = try? Kubeconfig.parse(text, path: "fuzz.kubeconfig")
        case .selector:
            for line in text.split(separator: "\n") {
                _ = try? LabelQuery.parse(String(line))
                _ = try? DurationString(String(line))
                if let value = try? JSONValue.parse(Data(line.utf8)) {
                    _ = try? value.decode(as: CountOrPercent.self)
                    _ = try? value.decode(as: LabelSelector.self)
                }
            }
        }
    }

    /// What templates are rendered over: a small Trivy-like event.
    static var templateContext: [String: Any] {
        [
            "title": "CVE-2024-0001", "severity": "HIGH",
            "vulnerabilities": [["id": "CVE-2024-0001", "package": "openssl"], ["id": "CVE-2024-0002", "package": "zlib"]],
        ]
    }
}
