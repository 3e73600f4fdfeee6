import ArgumentParser
import Foundation
import Resources

/// `steady describe KIND/NAME` (or `KIND NAME...`, or `KIND` for all): a readable account of objects.
public struct DescribeCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract: "Show details of objects: spec, status, conditions and recent changes.")

    @OptionGroup public var connection: ConnectionOptions

    @Argument(help: ArgumentHelp("KIND/NAME..., KIND NAME..., or KIND for every object of a kind.", valueName: "object"))
    public var objects: [String] = []

    @Option(name: [.customShort("l"), .long], help: "With KIND alone: a label selector.")
    public var selector: String?

    /// Creates the command with default flags.
    public init() {}

    /// Fetches and describes.
    public func run() async throws {
        try await CommandSupport.run {
            let references = try CommandSupport.references(objects, allowKindOnly: true)
            var failures = 0
            var printed = 0
            try await connection.withClient { client in
                for reference in references {
                    var found: [JSONValue] = []
                    if reference.names.isEmpty {
                        found = try await client.list(reference.info, labelSelector: selector).items
                        if found.isEmpty { Console.error("No resources found.") }
                    }
                    for name in reference.names {
                        do {
                            found.append(try await client.get(reference.info, name: name))
                        } catch let error as APIClientError where error.code == .server {
                            Console.error(Console.message(for: error))
                            failures += 1
                        }
                    }
                    for object in found {
                        if printed > 0 { Console.out("") }
                        Console.write(ObjectDescriber.describe(object, info: reference.info))
                        printed += 1
                    }
                }
            }
            if failures > 0 { throw ExitCode.failure }
        }
    }
}
