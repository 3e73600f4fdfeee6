import Foundation
import Resources
import Testing

@testable import Client

@Suite(.timeLimit(.minutes(2))) struct PrinterTests {
    @Test func tableColumnsAreAsWideAsTheirWidestCellPlusThreeSpaces() {
        let table = TextTable(
            headers: ["NAME", "READY", "AGE"],
            rows: [["a-very-long-name", "True", "5s"], ["b", "", "12m"]])
        #expect(table.columnWidths == [16, 5, 3])
        #expect(
            table.render() == [
                "NAME               READY   AGE",
                "a-very-long-name   True    5s",
                "b                          12m",
            ])
        #expect(table.render(includeHeaders: false).count == 2)
    }

    @Test func trailingEmptyCellsLeaveNoTrailingSpaces() {
        #expect(TextTable.line(["x", ""], widths: [4, 5]) == "x")
        // A cell wider than its column pushes the rest right rather than being cut.
        #expect(TextTable.line(["toolong", "b"], widths: [3, 1]) == "toolong   b")
    }

    static let ages: [(Double, String)] = [
        (0.0, "0s"), (-1.0, "0s"), (-5.0, "<invalid>"), (5, "5s"), (119, "119s"), (120, "2m"), (185, "3m5s"),
        (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (7 * 3600 + 1800, "7h30m"), (8 * 3600, "8h"),
        (47 * 3600, "47h"), (2 * 86400, "2d"), (4 * 86400 + 3 * 3600, "4d3h"), (8 * 86400, "8d"),
        (400 * 86400, "400d"), (3 * 365 * 86400 + 86400, "3y1d"), (9 * 365 * 86400, "9y"),
    ]

    @Test(arguments: PrinterTests.ages)
    func agesAreWrittenAsKubectlWritesThem(seconds: Double, expected: String) {
        #expect(HumanDuration.format(seconds: seconds) == expected)
    }

    @Test func ageOfATimestamp() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let created = Timestamp.format(Date(timeIntervalSince1970: 1_000_000 - 4 * 86400))
        #expect(HumanDuration.age(of: created, now: now) == "4d")
        #expect(HumanDuration.age(of: "not a time", now: now) == "<unknown>")
        #expect(HumanDuration.age(of: nil, now: now) == "<unknown>")
    }

    static func route(ready: String?) -> JSONValue {
        var object: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "Route",
            "metadata": ["name": "r", "creationTimestamp": "2030-01-01T00:00:00Z"],
            "spec": ["actions": ["a", "b"], "input": "input.x == 1"],
        ]
        if let ready {
            object["status"] = [
                "conditions": [
                    ["type": "Placed", "status": "False", "lastTransitionTime": "2030-01-01T00:00:00Z"],
                    [
                        "type": "Ready", "status": .string(ready), "reason": "X", "message": "m",
                        "lastTransitionTime": "2030-01-01T00:00:00Z",
                    ],
                ]
            ]
        }
        return object
    }

    @Test func readyComesFromTheReadyCondition() {
        #expect(Self.route(ready: "True").conditionStatus("Ready") == "True")
        #expect(Self.route(ready: "False").conditionStatus("Ready") == "False")
        #expect(Self.route(ready: "Unknown").conditionStatus("Ready") == "Unknown")
        #expect(Self.route(ready: nil).conditionStatus("Ready") == "")
    }

    /// A Table as the server sends it for two Routes.
    static let routeTable: JSONValue = [
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": ["resourceVersion": "42"],
        "columnDefinitions": [
            ["name": "Name", "type": "string", "format": "name", "priority": 0],
            ["name": "Ready", "type": "string", "priority": 0],
            ["name": "Actions", "type": "string", "priority": 0],
            ["name": "Age", "type": "string", "priority": 0],
            ["name": "Matched", "type": "integer", "priority": 1],
            ["name": "Template", "type": "string", "priority": 1],
        ],
        "rows": [
            [
                "cells": ["r", "True", "a,b", "90s", 7, .null],
                "object": ["metadata": ["name": "r", "resourceVersion": "40"]],
            ],
            [
                "cells": ["long-name", "", "c", "3m", 0, "raw-json"],
                "object": ["metadata": ["name": "long-name", "resourceVersion": "41"]],
            ],
        ],
    ]

    @Test func serverTablesPrintAsKubectlPrintsThem() throws {
        let table = try ServerTable(Self.routeTable)
        #expect(table.resourceVersion == "42")
        #expect(table.rows.map(\.name) == ["r", "long-name"])
        #expect(table.rows.map(\.resourceVersion) == ["40", "41"])
        #expect(
            table.textTable(wide: false).render() == [
                "NAME        READY   ACTIONS   AGE",
                "r           True    a,b       90s",
                "long-name           c         3m",
            ])
        // Wide adds the columns of priority 1 after AGE; a null cell is <none>, numbers print as numbers.
        #expect(
            table.textTable(wide: true).render() == [
                "NAME        READY   ACTIONS   AGE   MATCHED   TEMPLATE",
                "r           True    a,b       90s   7         <none>",
                "long-name           c         3m    0         raw-json",
            ])
        #expect(
            table.textTable(wide: false, namePrefix: "route.steady.dev/").rows.map { $0[0] } == [
                "route.steady.dev/r", "route.steady.dev/long-name",
            ])
    }

    @Test func anythingButATableIsAnInvalidResponse() {
        #expect(throws: APIClientError.self) { try ServerTable(["kind": "RouteList", "items": []]) }
    }

    @Test func yamlQuotesStringsThatWouldReadAsOtherTypes() {
        let value: JSONValue = [
            "version": "4", "flag": "true", "number": 4, "yes": true, "text": "plain", "empty": [:], "list": [],
            "multi": "line1\nline2", "time": "2030-01-01T00:00:00Z",
        ]
        let yaml = YAMLOutput.render(value)
        #expect(yaml.contains("version: \"4\"\n"))
        #expect(yaml.contains("flag: \"true\"\n"))
        #expect(yaml.contains("number: 4\n"))
        #expect(yaml.contains("\"yes\": true\n"))  // `yes` is a boolean in YAML 1.1.
        #expect(yaml.contains("text: plain\n"))
        #expect(yaml.contains("empty: {}\n"))
        #expect(yaml.contains("list: []\n"))
        #expect(yaml.contains("multi: |-\n  line1\n  line2\n"))
        #expect(yaml.contains("time: \"2030-01-01T00:00:00Z\"\n"))
        // Keys are sorted, and the YAML reads back as the same value.
        #expect(yaml.hasPrefix("empty:"))
        let back = try? ManifestDocuments.parse(yaml, file: "t").first?.value
        #expect(back == value)
    }

    @Test func jsonIsIndentedWithSortedKeys() {
        let value: JSONValue = ["b": [1, "x\"y"], "a": [:], "c": ["d": .null]]
        #expect(
            JSONOutput.render(value) == """
                {
                    "a": {},
                    "b": [
                        1,
                        "x\\"y"
                    ],
                    "c": {
                        "d": null
                    }
                }

                """)
    }

    @Test func describeShowsConditionsAndManagersButNoSecretValues() {
        var route = Self.route(ready: "False")
        route["metadata"]?["generation"] = 3
        route["metadata"]?["annotations"] = ["note": .string(String(repeating: "x", count: 300))]
        route["metadata"]?["managedFields"] = [
            ["manager": "steady", "operation": "Apply", "time": "2030-01-01T00:00:00Z"],
            ["manager": "controller", "operation": "Update", "subresource": "status", "time": "2030-01-01T00:01:00Z"],
        ]
        route["status"]?["observedGeneration"] = 2
        let now = Date(timeIntervalSince1970: 1_893_456_000 + 120)
        let text = ObjectDescriber.describe(route, info: Kinds.route, now: now)
        #expect(text.contains("Name:               r\n"))
        #expect(text.contains("Generation:         3 (observed: 2, not yet reconciled)"))
        #expect(text.contains("  Actions:  a, b\n"))
        #expect(text.contains("TYPE     STATUS   REASON   AGE   MESSAGE"))
        #expect(text.contains("  Ready    False    X        2m    m\n"))
        #expect(text.contains("  controller   Update      status        60s ago"))
        // Long annotations are cut.
        #expect(!text.contains(String(repeating: "x", count: 101)))
        #expect(text.contains("note=" + String(repeating: "x", count: 97) + "..."))

        let secret: JSONValue = [
            "apiVersion": "steady.dev/v1", "kind": "Secret", "metadata": ["name": "s"],
            "data": ["token": "aHVudGVyMg=="],
        ]
        let described = ObjectDescriber.describe(secret, info: Kinds.secret)
        #expect(described.contains("token:  <redacted>"))
        #expect(!described.contains("aHVudGVyMg=="))
    }

    @Test func describeLabelsSplitCamelCase() {
        #expect(ObjectDescriber.label("serializeActions") == "Serialize Actions")
        #expect(ObjectDescriber.label("url") == "Url")
        #expect(ObjectDescriber.label("ttlSecondsAfterFinished") == "Ttl Seconds After Finished")
    }
}
