import Agent
import Foundation
import Logging
import Reconciler
import Resources
import ServiceLifecycle

/// The runner `steady up` runs beside its controller: enrolled directly, exec allowed (one user owns
/// both sides on one machine), dialling the controller over loopback TLS like any agent.
struct LocalRunner: Service {
    let runtime: ControllerRuntime
    let ports: AsyncStream<Int>
    let name: String
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown { try await runWhenServing() }
    }

    private func runWhenServing() async throws {
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { return }
        let labels = ["steady.dev/local": "true"]
        let issued = try await runtime.agents.enroll(name: name, labels: labels)
        let stateDirectory = try AgentStateDirectory(
            path: runtime.configuration.dataDirectory.appendingPathComponent("agent").path)
        let configuration = AgentConfiguration(
            controllerURL: "https://127.0.0.1:\(port)", name: name, labels: labels,
            identity: AgentIdentity(
                runner: name, credential: issued.credential, caPEM: runtime.identity.caCertificatePEM,
                credentialIssued: Date(), credentialExpires: issued.expires),
            trustedCAPEM: runtime.identity.caCertificatePEM, allowsExec: true)
        let agent = Agent(configuration: configuration, stateDirectory: stateDirectory, logger: logger)
        logger.info("local runner enrolled", metadata: ["steady.runner": "\(name)"])
        try await agent.run()
    }

    /// A runner name from the host name, made a valid object name.
    static func defaultName() -> String {
        let host = AgentConfiguration.systemHostname().lowercased()
        let cleaned = String(host.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "-" })
            .trimmingCharacters(in: CharacterSet(charactersIn: "-."))
        return cleaned.isEmpty ? "local" : String(cleaned.prefix(63))
    }
}
