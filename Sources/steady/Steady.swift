import ArgumentParser
import Client

/// `steady`: the controller, the agent, and the commands that drive them.
@main
struct Steady: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steady",
        abstract: "A Kubernetes-style control plane for event routing and remote runs, without Kubernetes.",
        subcommands: [
            ControllerCommand.self,
            UpCommand.self,
            ApplyCommand.self,
        ]
    )
}
