import Foundation
import Reconciler
import Resources
import SteadyTesting
import Testing

@testable import Client

/// The client over HTTPS trusts exactly the CA it is given.
@Suite(.timeLimit(.minutes(2))) struct TLSLiveTests {
    @Test func theKubeconfigCAIsTrustedAndNothingElse() async throws {
        let directory = try TemporaryDirectory(prefix: "steady-client-tls")
        let otherDirectory = try TemporaryDirectory(prefix: "steady-client-tls-other")
        defer {
            directory.remove()
            otherDirectory.remove()
        }
        let identity = try ControllerIdentity.loadOrCreate(dataDirectory: directory.url)
        let stranger = try ControllerIdentity.loadOrCreate(dataDirectory: otherDirectory.url)
        try await LiveServer.with(tls: identity.tlsConfiguration, caPEM: identity.caCertificatePEM) { context in
            #expect(context.url.hasPrefix("https://"))
            #expect(try await context.client.list(Kinds.route).items.isEmpty)

            for caPEM in [stranger.caCertificatePEM, nil] {
                let error: APIClientError? = try await APIClient.withClient(
                    .init(server: context.url, caPEM: caPEM, token: LiveServer.token)
                ) { client in
                    do {
                        _ = try await client.list(Kinds.route)
                        return nil
                    } catch let error as APIClientError {
                        return error
                    }
                }
                #expect(error?.code == .connection)
                #expect(error?.description.hasPrefix("cannot reach \(context.url): TLS handshake failed") == true)
            }
        }
    }
}
