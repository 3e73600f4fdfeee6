import ArgumentParser

/// `apply -f PATH...`: validates every document, then applies them to the controller.
public struct ApplyCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "apply", abstract: "Apply manifests.")

    public init() {}

    public func run() async throws {
        throw ValidationError("apply is not implemented yet")
    }
}
