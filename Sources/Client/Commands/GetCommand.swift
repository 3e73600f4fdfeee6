import ArgumentParser
import Foundation
import Resources

/// `steady get KIND [NAME...]`: lists objects as a table (or YAML, JSON, names), and with `-w` keeps printing
/// them as they change.
public struct GetCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "List objects of a kind, or show some by name.",
        discussion: "Kinds: " + Kinds.named.map { info in
            ([info.singular] + info.shortNames).joined(separator: "|")
        }.joined(separator: ", "))

    /// Output formats of `get`.
    public enum Output: String, ExpressibleByArgument, Sendable, CaseIterable {
        case wide, name, yaml, json
    }

    @OptionGroup public var connection: ConnectionOptions

    @Argument(help: ArgumentHelp("The kind (route, routes, rt, ...), or KIND/NAME.", valueName: "kind"))
    public var kind: String

    @Argument(help: ArgumentHelp("Names of objects to show (default: all).", valueName: "name"))
    public var names: [String] = []

    @Option(name: [.customShort("l"), .long], help: "A label selector, such as tier=a,env!=prod.")
    public var selector: String?

    @Option(name: .shortAndLong, help: "wide, name, yaml or json.")
    public var output: Output?

    @Flag(name: .shortAndLong, help: "After listing, print objects as they change.")
    public var watch = false

    @Flag(name: .customLong("no-headers"), help: "Print tables without the header line.")
    public var noHeaders = false

    /// Creates the command with default flags.
    public init() {}

    /// Lists, prints, and watches when asked.
    public func run() async throws {
        try await CommandSupport.run {
            var references: [(info: KindInfo, names: [String])]
            if kind.contains(",") {
                guard names.isEmpty else {
                    throw ValidationError("names need a single kind: KIND NAME... or KIND/NAME...")
                }
                references = try kind.split(separator: ",").map {
                    (try CommandSupport.kind(String($0), readOnly: true), [])
                }
            } else {
                references = try CommandSupport.references([kind] + names, allowKindOnly: true, readOnly: true)
            }
            if watch, let readOnly = references.first(where: { $0.info.isReadOnly }) {
                throw ValidationError("\(readOnly.info.plural) cannot be watched; list them again instead")
            }
            if references.contains(where: { !$0.names.isEmpty }) && selector != nil {
                throw ValidationError("give names or a label selector (-l), not both")
            }
            if let reference = references.first, references.count == 1 {
                try await connection.withClient { client in
                    try await show(reference.info, names: reference.names, client: client)
                }
            } else {
                guard !watch else { throw ValidationError("-w watches one kind at a time") }
                try await connection.withClient { client in try await showSeveral(references, client: client) }
            }
        }
    }

    /// Whether the output is a table, which the server renders (as it does for kubectl).
    private var isTable: Bool { output == nil || output == .wide }

    private func show(_ info: KindInfo, names: [String], client: APIClient) async throws {
        var failures: [any Error] = []
        var printer = Printer(info: info, output: output, showHeaders: !noHeaders)
        let resourceVersion: String
        if isTable {
            var table: ServerTable?
            if names.isEmpty {
                table = try await client.table(info, labelSelector: selector)
            }
            for name in names {
                do {
                    let one = try await client.table(info, name: name)
                    if table == nil { table = one } else { table?.rows += one.rows }
                } catch let error as APIClientError where error.code == .server {
                    failures.append(error)
                }
            }
            resourceVersion = names.isEmpty ? table?.resourceVersion ?? "" : ""
            if let table, !table.rows.isEmpty {
                printer.printTable(table)
            } else if names.isEmpty && !watch {
                Console.error("No resources found.")
            }
        } else {
            var objects: [JSONValue] = []
            if names.isEmpty {
                let list = try await client.list(info, labelSelector: selector)
                objects = list.items
                resourceVersion = list.resourceVersion
            } else {
                resourceVersion = ""
                for name in names {
                    do {
                        objects.append(try await client.get(info, name: name))
                    } catch let error as APIClientError where error.code == .server {
                        failures.append(error)
                    }
                }
            }
            if !objects.isEmpty || (names.isEmpty && (output == .yaml || output == .json)) {
                printer.printObjects(objects, single: names.count == 1)
            }
        }
        for failure in failures { Console.error(Console.message(for: failure)) }
        if watch {
            try await follow(info, names: names, from: resourceVersion, printer: &printer, client: client)
        }
        if !failures.isEmpty { throw ExitCode.failure }
    }

    /// Several kinds: one table per kind with `kind.group/name` names (as kubectl prints them), or one List.
    private func showSeveral(_ references: [(info: KindInfo, names: [String])], client: APIClient) async throws {
        var failed = false
        func fetch<Result>(_ body: () async throws -> Result) async throws -> Result? {
            do {
                return try await body()
            } catch let error as APIClientError where error.code == .server {
                Console.error(Console.message(for: error))
                failed = true
                return nil
            }
        }
        if isTable {
            var printed = 0
            for reference in references {
                var rows: [ServerTable.Row] = []
                var table: ServerTable?
                if reference.names.isEmpty {
                    table = try await client.table(reference.info, labelSelector: selector)
                    rows = table?.rows ?? []
                }
                for name in reference.names {
                    guard let one = try await fetch({ try await client.table(reference.info, name: name) }) else {
                        continue
                    }
                    table = one
                    rows += one.rows
                }
                guard var table, !rows.isEmpty else { continue }
                table.rows = rows
                let text = table.textTable(wide: output == .wide, namePrefix: "\(reference.info.qualifiedName)/")
                if printed > 0 { Console.out("") }
                for line in text.render(includeHeaders: !noHeaders) { Console.out(line) }
                printed += 1
            }
            if printed == 0 && !failed { Console.error("No resources found.") }
        } else {
            var groups: [(info: KindInfo, objects: [JSONValue])] = []
            for reference in references {
                var objects: [JSONValue] = []
                if reference.names.isEmpty {
                    objects = try await client.list(reference.info, labelSelector: selector).items
                }
                for name in reference.names {
                    if let object = try await fetch({ try await client.get(reference.info, name: name) }) {
                        objects.append(object)
                    }
                }
                groups.append((reference.info, objects))
            }
            if output == .name {
                for group in groups {
                    for object in group.objects { Console.out(Printer.name(group.info, object)) }
                }
            } else {
                let value: JSONValue = [
                    "apiVersion": "v1", "kind": "List", "items": .array(groups.flatMap(\.objects)),
                    "metadata": ["resourceVersion": ""],
                ]
                Console.write(output == .yaml ? YAMLOutput.render(value) : JSONOutput.render(value))
            }
        }
        if failed { throw ExitCode.failure }
    }

    /// Watches until interrupted, resuming after the server ends a watch and re-listing after 410 Gone; a watch
    /// that ends without events is re-opened after a growing pause (``Backoff/watchRestart``).
    private func follow(
        _ info: KindInfo, names: [String], from start: String, printer: inout Printer, client: APIClient
    ) async throws {
        var resourceVersion = start
        let wanted = Set(names)
        var quietWatches = 0
        while !Task.isCancelled {
            if resourceVersion.isEmpty {
                resourceVersion = try await client.list(info, labelSelector: selector).resourceVersion
            }
            var delivered = false
            do {
                let events = client.watch(
                    info, name: names.count == 1 ? names[0] : nil, labelSelector: selector,
                    resourceVersion: resourceVersion, asTable: isTable)
                for try await event in events {
                    delivered = true
                    let change = try Change(event, asTable: isTable, server: client.server)
                    if let version = change.resourceVersion { resourceVersion = version }
                    guard event.type != "BOOKMARK", wanted.isEmpty || wanted.contains(change.name) else { continue }
                    printer.printChange(change)
                }
            } catch let error as APIClientError where error.isGone {
                resourceVersion = ""
            }
            quietWatches = delivered ? 0 : quietWatches + 1
            try await Task.sleep(for: Backoff.watchRestart.jitteredDelay(attempt: quietWatches))
        }
    }

    /// One watch event as `get -w` prints it: the object, or its one-row Table.
    struct Change {
        var object: JSONValue
        var table: ServerTable?

        init(_ event: APIClient.WatchEvent, asTable: Bool, server: String) throws {
            object = event.object
            if asTable && event.type != "BOOKMARK" { table = try ServerTable(event.object, server: server) }
        }

        var name: String { table?.rows.first?.name ?? object["metadata"]?["name"]?.stringValue ?? "" }

        var resourceVersion: String? {
            table?.rows.first?.resourceVersion ?? object["metadata"]?["resourceVersion"]?.stringValue
        }
    }

    /// Prints objects in the chosen format, keeping table columns aligned across watch updates.
    struct Printer {
        let info: KindInfo
        let output: Output?
        let showHeaders: Bool
        var widths: [Int]?
        var printedDocuments = 0

        init(info: KindInfo, output: Output?, showHeaders: Bool) {
            self.info = info
            self.output = output
            self.showHeaders = showHeaders
        }

        /// Prints the server's table; later rows keep its column widths.
        mutating func printTable(_ table: ServerTable) {
            let text = table.textTable(wide: output == .wide)
            widths = text.columnWidths
            for line in text.render(includeHeaders: showHeaders) { Console.out(line) }
        }

        /// Prints objects as names, YAML or JSON (one object alone, several as a `List`).
        mutating func printObjects(_ objects: [JSONValue], single: Bool) {
            if output == .name {
                for object in objects { Console.out(Self.name(info, object)) }
                return
            }
            let value: JSONValue =
                single && objects.count == 1
                ? objects[0]
                : ["apiVersion": "v1", "kind": "List", "items": .array(objects), "metadata": ["resourceVersion": ""]]
            Console.write(output == .yaml ? YAMLOutput.render(value) : JSONOutput.render(value))
            printedDocuments += 1
        }

        mutating func printChange(_ change: Change) {
            switch output {
            case .name:
                Console.out(Self.name(info, change.object))
            case .yaml:
                Console.write((printedDocuments > 0 ? "---\n" : "") + YAMLOutput.render(change.object))
                printedDocuments += 1
            case .json:
                Console.write(JSONOutput.render(change.object))
                printedDocuments += 1
            case .wide, nil:
                guard let table = change.table else { return }
                let text = table.textTable(wide: output == .wide)
                if widths == nil {
                    widths = text.columnWidths
                    if showHeaders { Console.out(text.render()[0]) }
                }
                for row in text.rows { Console.out(TextTable.line(row, widths: widths ?? [])) }
            }
        }

        static func name(_ info: KindInfo, _ object: JSONValue) -> String {
            "\(info.qualifiedName)/\(object["metadata"]?["name"]?.stringValue ?? "")"
        }
    }
}
