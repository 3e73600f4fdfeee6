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
        discussion: "Kinds: " + Kinds.all.map { info in
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
                references = try kind.split(separator: ",").map { (try CommandSupport.kind(String($0)), []) }
            } else {
                references = try CommandSupport.references([kind] + names, allowKindOnly: true)
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

    private func show(_ info: KindInfo, names: [String], client: APIClient) async throws {
        var objects: [JSONValue] = []
        var failures: [any Error] = []
        var resourceVersion = ""
        if names.isEmpty {
            let list = try await client.list(info, labelSelector: selector)
            objects = list.items
            resourceVersion = list.resourceVersion
        } else {
            for name in names {
                do {
                    objects.append(try await client.get(info, name: name))
                } catch let error as APIClientError where error.code == .server {
                    failures.append(error)
                }
            }
        }
        var printer = Printer(info: info, output: output, showHeaders: !noHeaders)
        if objects.isEmpty && names.isEmpty && !watch && output == nil {
            Console.error("No resources found.")
        } else if !objects.isEmpty || (names.isEmpty && (output == .yaml || output == .json)) {
            printer.printInitial(objects, single: names.count == 1)
        }
        for failure in failures { Console.error(Console.message(for: failure)) }
        if watch {
            try await follow(info, names: names, from: resourceVersion, printer: &printer, client: client)
        }
        if !failures.isEmpty { throw ExitCode.failure }
    }

    /// Several kinds: one table per kind with `kind.group/name` names (as kubectl prints them), or one List.
    private func showSeveral(_ references: [(info: KindInfo, names: [String])], client: APIClient) async throws {
        var groups: [(info: KindInfo, objects: [JSONValue])] = []
        var failed = false
        for reference in references {
            var objects: [JSONValue] = []
            if reference.names.isEmpty {
                objects = try await client.list(reference.info, labelSelector: selector).items
            }
            for name in reference.names {
                do {
                    objects.append(try await client.get(reference.info, name: name))
                } catch let error as APIClientError where error.code == .server {
                    Console.error(Console.message(for: error))
                    failed = true
                }
            }
            groups.append((reference.info, objects))
        }
        switch output {
        case .yaml, .json:
            let value: JSONValue = [
                "apiVersion": "v1", "kind": "List", "items": .array(groups.flatMap(\.objects)),
                "metadata": ["resourceVersion": ""],
            ]
            Console.write(output == .yaml ? YAMLOutput.render(value) : JSONOutput.render(value))
        case .name:
            for group in groups {
                for object in group.objects { Console.out(Printer.name(group.info, object)) }
            }
        case .wide, nil:
            var printed = 0
            for group in groups where !group.objects.isEmpty {
                var table = ResourceColumns.table(for: group.info, objects: group.objects, wide: output == .wide)
                for index in table.rows.indices {
                    table.rows[index][0] = "\(group.info.qualifiedName)/\(table.rows[index][0])"
                }
                if printed > 0 { Console.out("") }
                for line in table.render(includeHeaders: !noHeaders) { Console.out(line) }
                printed += 1
            }
            if printed == 0 && !failed { Console.error("No resources found.") }
        }
        if failed { throw ExitCode.failure }
    }

    /// Watches until interrupted, resuming after the server ends a watch and re-listing after 410 Gone.
    private func follow(
        _ info: KindInfo, names: [String], from start: String, printer: inout Printer, client: APIClient
    ) async throws {
        var resourceVersion = start
        let wanted = Set(names)
        while !Task.isCancelled {
            if resourceVersion.isEmpty {
                resourceVersion = try await client.list(info, labelSelector: selector).resourceVersion
            }
            do {
                let events = client.watch(
                    info, name: names.count == 1 ? names[0] : nil, labelSelector: selector,
                    resourceVersion: resourceVersion)
                for try await event in events {
                    if let version = event.object["metadata"]?["resourceVersion"]?.stringValue {
                        resourceVersion = version
                    }
                    guard event.type != "BOOKMARK" else { continue }
                    let name = event.object["metadata"]?["name"]?.stringValue ?? ""
                    guard wanted.isEmpty || wanted.contains(name) else { continue }
                    printer.printChange(event.object)
                }
            } catch let error as APIClientError where error.isGone {
                resourceVersion = ""
            }
            // The server ended the watch; pause briefly so that a server ending watches at once is not hammered.
            try await Task.sleep(for: .milliseconds(200))
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

        mutating func printInitial(_ objects: [JSONValue], single: Bool) {
            switch output {
            case .name:
                for object in objects { Console.out(Self.name(info, object)) }
            case .yaml, .json:
                let value: JSONValue =
                    single && objects.count == 1
                    ? objects[0]
                    : ["apiVersion": "v1", "kind": "List", "items": .array(objects), "metadata": ["resourceVersion": ""]]
                Console.write(output == .yaml ? YAMLOutput.render(value) : JSONOutput.render(value))
                printedDocuments += 1
            case .wide, nil:
                let table = ResourceColumns.table(for: info, objects: objects, wide: output == .wide)
                widths = table.columnWidths
                for line in table.render(includeHeaders: showHeaders) { Console.out(line) }
            }
        }

        mutating func printChange(_ object: JSONValue) {
            switch output {
            case .name:
                Console.out(Self.name(info, object))
            case .yaml:
                Console.write((printedDocuments > 0 ? "---\n" : "") + YAMLOutput.render(object))
                printedDocuments += 1
            case .json:
                Console.write(JSONOutput.render(object))
                printedDocuments += 1
            case .wide, nil:
                let wide = output == .wide
                let row = ResourceColumns.row(for: info, object: object, wide: wide)
                if widths == nil {
                    let table = TextTable(headers: ResourceColumns.headers(for: info, wide: wide), rows: [row])
                    widths = table.columnWidths
                    if showHeaders { Console.out(table.render()[0]) }
                }
                Console.out(TextTable.line(row, widths: widths ?? []))
            }
        }

        static func name(_ info: KindInfo, _ object: JSONValue) -> String {
            "\(info.qualifiedName)/\(object["metadata"]?["name"]?.stringValue ?? "")"
        }
    }
}
