import ArgumentParser
import Foundation
import Resources

/// What the commands share: error reporting with kubectl's conventions, kind and name arguments, durations.
enum CommandSupport {
    /// Runs a command body; errors other than exit codes are printed (see ``Console/message(for:)``) and turned
    /// into exit code `failureCode`.
    static func run(failureCode: Int32 = 1, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch let error as ValidationError {
            // An argument problem found while running: said like every other error, with the usual exit code.
            Console.error("error: \(error.message)")
            throw ExitCode(failureCode)
        } catch is CancellationError {
            throw ExitCode(130)
        } catch {
            Console.error(Console.message(for: error))
            throw ExitCode(failureCode)
        }
    }

    /// Resolves what a user typed as a kind (`route`, `routes`, `rt`, `routes.steady.dev`), or says which kind
    /// they probably meant. A read-only kind (`executions`) is refused unless `readOnly` allows it.
    static func kind(_ text: String, readOnly: Bool = false) throws -> KindInfo {
        guard let info = Kinds.resolve(text) else { throw unknownKind(text) }
        if info.isReadOnly && !readOnly {
            throw CommandError(
                "\(info.plural) are read-only records; list them with: steady get \(info.plural) [-l route=NAME]")
        }
        return info
    }

    /// `unknown resource type "rout"; did you mean "route"?`
    static func unknownKind(_ text: String) -> CommandError {
        var message = "unknown resource type \"\(text)\""
        if let nearest = Suggestion.nearest(to: text.lowercased(), among: Kinds.allNames) {
            let info = Kinds.resolve(nearest)
            message += "; did you mean \"\(info?.singular ?? nearest)\"?"
        } else {
            message += "; known types: " + Kinds.named.map(\.singular).joined(separator: ", ")
        }
        return CommandError(message)
    }

    /// Objects named on the command line: `KIND/NAME...` (kinds may differ) or `KIND NAME...`.
    /// With `allowKindOnly`, a lone `KIND` means every object of the kind (returned with an empty name list);
    /// `readOnly` allows read-only kinds (see ``kind(_:readOnly:)``).
    static func references(
        _ arguments: [String], allowKindOnly: Bool, readOnly: Bool = false
    ) throws -> [(info: KindInfo, names: [String])] {
        guard let first = arguments.first else {
            throw ValidationError("name a resource: KIND/NAME or KIND NAME")
        }
        if first.contains("/") {
            var grouped: [(info: KindInfo, names: [String])] = []
            for argument in arguments {
                let parts = argument.split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[1].isEmpty else {
                    throw ValidationError("\"\(argument)\" is not KIND/NAME; do not mix KIND/NAME with KIND NAME")
                }
                let info = try kind(parts[0], readOnly: readOnly)
                if let index = grouped.firstIndex(where: { $0.info.kind == info.kind }) {
                    grouped[index].names.append(parts[1])
                } else {
                    grouped.append((info, [parts[1]]))
                }
            }
            return grouped
        }
        let info = try kind(first, readOnly: readOnly)
        let names = Array(arguments.dropFirst())
        if let mixed = names.first(where: { $0.contains("/") }) {
            throw ValidationError("\"\(mixed)\": there is no need to give a kind when one is given as the first argument")
        }
        if names.isEmpty && !allowKindOnly {
            throw ValidationError("name at least one \(info.singular): \(info.singular) NAME or \(info.singular)/NAME")
        }
        return [(info, names)]
    }

    /// A duration such as `30s`, `5m`, `1h30m`, `500ms`, or a plain number of seconds.
    static func seconds(_ text: String) throws -> Double {
        if let number = Double(text), number >= 0 { return number }
        do {
            return try DurationString(text).seconds
        } catch {
            throw ValidationError("invalid duration \"\(text)\": use a number with a unit, like 30s, 5m or 1h")
        }
    }
}

/// A command-line failure with a message for the user.
struct CommandError: Error, CustomStringConvertible {
    var message: String

    init(_ message: String) {
        self.message = message
    }

    var description: String { message }
}

extension APIClient.DryRun: ExpressibleByArgument {}
