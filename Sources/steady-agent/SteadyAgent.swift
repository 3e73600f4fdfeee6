import AgentCLI
import ArgumentParser

/// `steady-agent`: only the runner agent, without the controller, its store and the client commands that `steady`
/// carries, so a host that runs an agent loads no more than the agent needs. It takes the flags of
/// `steady agent`, which is the same command.
@main
struct SteadyAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steady-agent", abstract: AgentCommand.configuration.abstract,
        discussion: AgentCommand.configuration.discussion)

    @OptionGroup var agent: AgentCommand

    func run() async throws {
        try await agent.run()
    }
}
