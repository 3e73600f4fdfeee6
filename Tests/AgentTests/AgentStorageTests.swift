import Agent
import Foundation
import Resources
import SteadyTesting
import Testing

@Suite(.timeLimit(.minutes(5))) struct AgentStorageTests {
    func permissions(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func theSliceIsSavedPrivatelyAndLoadsBack() throws {
        let temporary = try TemporaryDirectory(prefix: "agent-storage")
        defer { temporary.remove() }
        let directory = try AgentStateDirectory(path: temporary.file("state").path)
        #expect(try permissions(directory.path) == 0o700)
        #expect(try directory.loadSlice() == nil)
        let slice = RunnerSlice(revision: 7, objects: [SliceFixtures.secret("creds", value: "hunter2"), SliceFixtures.httpAction("notify")])
        try directory.saveSlice(slice)
        let file = directory.file(AgentStateDirectory.FileName.slice)
        #expect(try permissions(file) == 0o600)
        #expect(try directory.loadSlice() == slice)
        // Saving again replaces the file atomically, leaving no temporary files behind.
        try directory.saveSlice(RunnerSlice(revision: 8, objects: [SliceObject]()))
        #expect(try directory.loadSlice()?.revision == 8)
        #expect(try permissions(file) == 0o600)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(names == ["slice.json"])
    }

    @Test func aModifiedSliceFileIsRefused() throws {
        let temporary = try TemporaryDirectory(prefix: "agent-storage")
        defer { temporary.remove() }
        let directory = try AgentStateDirectory(path: temporary.path)
        try directory.saveSlice(RunnerSlice(revision: 7, objects: [SliceFixtures.httpAction("notify")]))
        let file = directory.file(AgentStateDirectory.FileName.slice)
        let tampered = try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(of: "hooks.example", with: "evil.example")
        try Data(tampered.utf8).write(to: URL(fileURLWithPath: file))
        let error = #expect(throws: AgentError.self) { try directory.loadSlice() }
        #expect(error?.message.contains("set aside as \(file).corrupt-") == true, "\(String(describing: error))")
        // Set aside, it no longer stands in the way: the next load starts empty and the next save replaces it.
        let names = try FileManager.default.contentsOfDirectory(atPath: temporary.path)
        #expect(names.contains { $0.hasPrefix("slice.json.corrupt-") }, "\(names)")
        #expect(try directory.loadSlice() == nil)
    }

    @Test func theIdentityIsSavedPrivatelyAndLoadsBack() throws {
        let temporary = try TemporaryDirectory(prefix: "agent-storage")
        defer { temporary.remove() }
        let directory = try AgentStateDirectory(path: temporary.path)
        #expect(try directory.loadIdentity() == nil)
        let identity = AgentIdentity(runner: "web-1", credential: "cred-secret", caPEM: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
        try directory.saveIdentity(identity)
        #expect(try permissions(directory.file("credential")) == 0o600)
        #expect(try permissions(directory.file("runner")) == 0o600)
        #expect(try directory.loadIdentity() == identity)
        #expect(!identity.description.contains("cred-secret"))
        // A credential without its CA is an error, not a silent re-enrolment.
        try FileManager.default.removeItem(atPath: directory.file("ca.crt"))
        #expect(throws: AgentError.self) { try directory.loadIdentity() }
    }

    @Test func inMemoryStorageRoundTrips() {
        let storage = InMemoryAgentStorage()
        let slice = RunnerSlice(revision: 3, objects: [SliceFixtures.httpAction("notify")])
        storage.saveSlice(slice)
        #expect(storage.loadSlice() == slice)
        #expect(storage.sliceSaveCount == 1)
    }
}
