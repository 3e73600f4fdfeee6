import Foundation
import Resources
import Testing

@testable import Client

@Suite(.timeLimit(.minutes(2))) struct APIClientErrorTests {
    @Test func notFoundReadsLikeKubectl() {
        let body = Data(
            #"{"apiVersion":"v1","kind":"Status","status":"Failure","message":"routes.steady.dev \"x\" not found","reason":"NotFound","code":404,"details":{"name":"x","kind":"routes","group":"steady.dev"}}"#
                .utf8)
        let error = APIClientError.decoding(status: 404, body: body, server: "https://h:1")
        #expect(error.isNotFound)
        #expect(error.code == .server)
        #expect(error.name == "x")
        #expect(error.kind == "routes")
        #expect(error.description == #"Error from server (NotFound): routes.steady.dev "x" not found"#)
        #expect(Console.message(for: error) == error.description)
    }

    @Test func causesAreDecoded() {
        let body = Data(
            #"{"kind":"Status","message":"Apply failed with 1 conflict","reason":"Conflict","code":409,"details":{"causes":[{"field":"spec.input","reason":"FieldManagerConflict","message":"conflict with \"other\""}]}}"#
                .utf8)
        let error = APIClientError.decoding(status: 409, body: body, server: "")
        #expect(error.isConflict)
        #expect(error.causes == [.init(field: "spec.input", reason: "FieldManagerConflict", message: "conflict with \"other\"")])
        #expect(error.description.contains("\n  spec.input: conflict with \"other\""))
    }

    @Test func nonStatusBodiesNameTheHTTPStatus() {
        let error = APIClientError.decoding(status: 502, body: Data("<html>bad gateway</html>".utf8), server: "")
        #expect(error.status == 502)
        #expect(error.description.hasPrefix("Error from server (HTTP 502): the server responded with HTTP 502"))
        let gone = APIClientError.decoding(status: 410, body: Data(), server: "")
        #expect(gone.isGone)
    }

    @Test func aRefusedConnectionNamesTheServerAndWhatToDo() async throws {
        // Nothing listens on port 1 of the loopback interface.
        let url = "http://127.0.0.1:1"
        do {
            try await APIClient.withClient(.init(server: url, token: "t")) { client in
                _ = try await client.list(Kinds.route)
            }
            Issue.record("expected a connection error")
        } catch let error as APIClientError {
            #expect(error.code == .connection)
            #expect(error.description == "cannot reach \(url): connection refused — is the controller running?")
            #expect(Console.message(for: error) == "error: " + error.description)
        }
    }

    @Test func badServerURLsAreRefused() {
        #expect(throws: APIClientError.self) { try APIClient(configuration: .init(server: "ctl:7443")) }
        #expect(throws: APIClientError.self) { try APIClient(configuration: .init(server: "ftp://ctl")) }
    }
}
