import Agent
import ArgumentParser
import Client
import Foundation
import Reconciler
import Resources
import TLSSupport

/// `steady token create|list|revoke`: join tokens that let agents enrol.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Manage the join tokens agents enrol with.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a join token and print it as <CA-hash>::<id>.<secret>.")

        @OptionGroup var connection: ConnectionOptions

        @Option(help: "How long the token is valid, e.g. 24h; 0 for no expiry.")
        var ttl = "24h"

        @Option(help: "A note stored with the token.")
        var description: String?

        @Flag(help: "Create a token that may only post events (POST /events), printed as <id>.<secret>.")
        var events = false

        @Option(
            name: .customLong("controller"),
            help: ArgumentHelp(
                """
                The controllers agents enrolled with the token connect to, https://HOST:PORT, comma-separated or \
                repeated: with several controllers, agents then know every replica and fail over between them.
                """, valueName: "url"))
        var controllers: [String] = []

        /// `--controller` values, each list split and checked.
        var controllerURLs: [String] {
            get throws {
                let urls = controllers.flatMap { $0.split(separator: ",") }.map {
                    $0.trimmingCharacters(in: .whitespaces)
                }.filter { !$0.isEmpty }
                if let problem = urls.lazy.compactMap({ AgentConfiguration.controllerURLProblem($0) }).first {
                    throw ValidationError(problem)
                }
                return AgentConfiguration.merged([], urls)
            }
        }

        func validate() throws {
            if events && !controllers.isEmpty {
                throw ValidationError("--controller is for agents' join tokens, not --events tokens")
            }
            _ = try controllerURLs
        }

        func run() async throws {
            let duration: Duration?
            do {
                let parsed = try DurationString(ttl)
                duration = parsed.seconds == 0 ? nil : parsed.duration
            } catch {
                throw ValidationError("--ttl: \(error.message)")
            }
            let configuration = try connection.makeConfiguration()
            guard let caPEM = configuration.caPEM else {
                throw ValidationError("the kubeconfig has no CA certificate, so the token cannot carry its hash")
            }
            let token = JoinToken.make(ttl: duration, description: description, forEvents: events)
            try await APIClient.withClient(configuration) { client in
                _ = try await client.create(Kinds.secret, token.object)
            }
            if events {
                Console.out("\(token.id).\(token.secret)")
                return
            }
            Console.out(
                AgentJoinToken(
                    caHash: try caHash(pem: caPEM), id: token.id, secret: token.secret, controllers: try controllerURLs
                ).text)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List join tokens (never their secrets).")

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let secrets = try await connection.withClient { client in
                try await client.list(Kinds.secret, labelSelector: "steady.dev/join-token=true").items
            }
            Console.out("ID       EXPIRES                 DESCRIPTION")
            for secret in secrets {
                let name = secret["metadata"]?["name"]?.stringValue ?? ""
                let id = name.replacingOccurrences(of: "join-token-", with: "")
                let expires = secret["metadata"]?["annotations"]?["steady.dev/expires"]?.stringValue ?? "-"
                let note = secret["metadata"]?["annotations"]?["steady.dev/description"]?.stringValue ?? ""
                Console.out("\(id.padding(toLength: 8, withPad: " ", startingAt: 0)) \(expires.padding(toLength: 23, withPad: " ", startingAt: 0)) \(note)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a join token by its id.")

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: "The token id (the six characters before the dot).")
        var id: String

        func run() async throws {
            try await connection.withClient { client in
                _ = try await client.delete(Kinds.secret, name: JoinToken.secretName(id: id))
            }
            Console.out("token \(id) revoked")
        }
    }
}
