import AgentCLI
import ArgumentParser
import Client

/// `steady`: the controller, the agent, and the commands that drive them.
@main
struct Steady: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steady",
        abstract: "A Kubernetes-style control plane for event routing and remote runs, without Kubernetes.",
        subcommands: [
            // Servers and agents (owned by the lead: Sources/steady/*Command.swift).
            ControllerCommand.self,
            UpCommand.self,
            TokenCommand.self,
            AgentCommand.self,
            // Clients (Sources/Client; `apply` is also its own executable).
            ApplyCommand.self,
            GetCommand.self,
            DescribeCommand.self,
            DeleteCommand.self,
            DiffCommand.self,
            WaitCommand.self,
            ReconcileCommand.self,
            RunCommand.self,
            LogsCommand.self,
            ImportCommand.self,
        ]
    )
}
