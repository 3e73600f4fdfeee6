import AgentCLI
import ArgumentParser

/// `steady-agent`: only the runner agent, without the controller, its store and the client commands that `steady`
/// carries, so a host that runs an agent loads no more than the agent needs. `steady agent` is the same command.
@main
enum SteadyAgent {
    static func main() async {
        await AgentCommand.main(nil)
    }
}
