import Agent
import Logging
import Resources
import Testing

/// Agents against a fake controller over real TLS sockets: discovery, enrolment, the stream, reports, refusals.
@Suite(.timeLimit(.minutes(5))) struct AgentProtocolTests {
    typealias F = SliceFixtures
    static let tokenTail = "abcdef.0123456789abcdef"

    func configuration(url: String, token: String?, identity: AgentIdentity? = nil) throws -> AgentConfiguration {
        AgentConfiguration(
            controllerURL: url, name: "web-1", labels: ["role": "web"],
            joinToken: try token.map { text throws(AgentError) in try AgentJoinToken(parsing: text) },
            identity: identity, heartbeatInterval: .milliseconds(100),
            backoff: ReconnectBackoff(initial: .milliseconds(10), maximum: .milliseconds(100)),
            hostname: "host-1", agentVersion: "test")
    }

    var logger: Logger {
        var logger = Logger(label: "agent-test")
        logger.logLevel = .critical
        return logger
    }

    /// Runs the agent while `body` runs; returns how `run()` ended if it ended by itself.
    func withAgent(
        _ agent: Agent, _ body: @Sendable () async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await agent.run() }
            defer { group.cancelAll() }
            try await body()
        }
    }

    @Test func failsOverToTheNextControllerAndResumesFromItsRevision() async throws {
        let fake = FakeController()
        try await FakeController.serve(fake) { url, identity in
            let storage = InMemoryAgentStorage()
            // The first controller is gone (nothing listens on port 1): enrolment and the stream use the next.
            let agent = Agent(
                configuration: try configuration(
                    url: "https://127.0.0.1:1,\(url)", token: "\(identity.caHash)::\(Self.tokenTail)"),
                sliceStorage: storage, identityStorage: storage, logger: logger)
            try await withAgent(agent) {
                #expect(await eventually { await fake.connectionCount == 1 })
                let stored = try #require(storage.loadIdentity())
                #expect(stored.credential == "cred-for-web-1")
                await fake.send(F.snapshot(5, [F.httpAction("notify")]))
                #expect(await eventually { await agent.state.revision == 5 })
                // Lost again: the agent tries the dead one, comes back here and resumes from revision 5.
                await fake.disconnect()
                #expect(await eventually { await fake.connectionCount == 2 })
                let resumed = try #require(await fake.sliceRequests.last)
                #expect(resumed.revision == "5")
            }
        }
    }

    @Test func enrolsFollowsTheSliceReportsAndResumes() async throws {
        let fake = FakeController()
        try await FakeController.serve(fake) { url, identity in
            let storage = InMemoryAgentStorage()
            let agent = Agent(
                configuration: try configuration(url: url, token: "\(identity.caHash)::\(Self.tokenTail)"),
                sliceStorage: storage, identityStorage: storage, logger: logger)
            try await withAgent(agent) {
                // Discovery and enrolment with the token, then the stream with the new credential, from nothing.
                #expect(await eventually { await fake.connectionCount == 1 })
                #expect(await fake.enrollAuthorizations == ["Bearer \(Self.tokenTail)"])
                let enrollment = try #require(await fake.enrollments.first)
                #expect(enrollment.name == "web-1" && enrollment.labels == ["role": "web"])
                #expect(enrollment.hostname == "host-1" && enrollment.agentVersion == "test")
                let stored = try #require(storage.loadIdentity())
                #expect(stored.credential == "cred-for-web-1")
                #expect(stored.caPEM == identity.caCertificatePEM)
                let first = try #require(await fake.sliceRequests.first)
                #expect(first.authorization == "Bearer cred-for-web-1")
                #expect(first.revision == "0" && first.digest == nil)

                // A snapshot is applied, persisted and reported.
                let objects = [F.route("alerts", actions: ["notify"]), F.httpAction("notify"), F.secret("creds")]
                await fake.send(F.snapshot(5, objects))
                #expect(await eventually { await fake.reports.contains { $0.observedSliceRevision == 5 && $0.synced } })
                #expect(await agent.state.currentSlice.revision == 5)
                #expect(storage.loadSlice()?.revision == 5)
                let report = try #require(await fake.reports.last)
                #expect(report.sliceDigest == SliceDigest.digest(of: objects))
                #expect(report.hostname == "host-1")

                // A diff, then the controller goes away; the agent resumes from what it applied.
                let after = [F.route("alerts", actions: ["notify"]), F.httpAction("notify")]
                await fake.send(F.diff(6, base: 5, removed: [SliceKey(kind: "Secret", name: "creds")], after: after))
                #expect(await eventually { await agent.state.revision == 6 })
                await fake.disconnect()
                #expect(await eventually { await fake.connectionCount == 2 })
                let resumed = try #require(await fake.sliceRequests.last)
                #expect(resumed.revision == "6")
                #expect(resumed.digest == SliceDigest.digest(of: after))
                // Heartbeats keep coming without slice messages.
                let count = await fake.reports.count
                #expect(await eventually { await fake.reports.count >= count + 2 })
            }
        }
    }

    @Test func refusesAControllerWhoseCADoesNotMatchTheToken() async throws {
        let fake = FakeController()
        try await FakeController.serve(fake) { url, _ in
            let zeros = "sha256:" + String(repeating: "0", count: 64)
            let storage = InMemoryAgentStorage()
            let agent = Agent(
                configuration: try configuration(url: url, token: "\(zeros)::\(Self.tokenTail)"),
                sliceStorage: storage, identityStorage: storage, logger: logger)
            do {
                try await agent.run()
                Issue.record("the agent must refuse a CA that does not match the token")
            } catch let error as AgentError {
                #expect(error.code == .caMismatch)
                #expect(error.message.contains("does not match the join token's \(zeros)"), "\(error.message)")
            }
            #expect(await fake.enrollAuthorizations.isEmpty)
            #expect(storage.loadIdentity() == nil)
        }
    }

    @Test func stopsWhenTheControllerRefusesTheToken() async throws {
        let fake = FakeController()
        await fake.setEnrollFailure((.unauthorized, "unknown or revoked join token abcdef"))
        try await FakeController.serve(fake) { url, identity in
            let storage = InMemoryAgentStorage()
            let agent = Agent(
                configuration: try configuration(url: url, token: "\(identity.caHash)::\(Self.tokenTail)"),
                sliceStorage: storage, identityStorage: storage, logger: logger)
            await #expect {
                try await agent.run()
            } throws: { error in
                guard let error = error as? AgentError else { return false }
                return error.code == .enrolmentRefused && error.message.contains("unknown or revoked join token")
                    && !error.message.contains("0123456789abcdef")
            }
            #expect(storage.loadIdentity() == nil)
        }
    }

    @Test func stopsWhenTheCredentialIsRevoked() async throws {
        let fake = FakeController()
        await fake.setSliceFailure((.unauthorized, "the credential is revoked"))
        try await FakeController.serve(fake) { url, identity in
            let storage = InMemoryAgentStorage()
            let given = AgentIdentity(runner: "web-1", credential: "cred-for-web-1", caPEM: identity.caCertificatePEM)
            let agent = Agent(
                configuration: try configuration(url: url, token: nil, identity: given),
                sliceStorage: storage, identityStorage: storage, logger: logger)
            await #expect {
                try await agent.run()
            } throws: { error in
                (error as? AgentError)?.code == .credentialRevoked
            }
            // A given identity skips discovery and enrolment.
            #expect(await fake.enrollAuthorizations.isEmpty)
        }
    }

    @Test func aDigestMismatchIsReportedAndFollowedByASnapshotRequest() async throws {
        let fake = FakeController()
        try await FakeController.serve(fake) { url, identity in
            let storage = InMemoryAgentStorage()
            let given = AgentIdentity(runner: "web-1", credential: "cred-for-web-1", caPEM: identity.caCertificatePEM)
            let agent = Agent(
                configuration: try configuration(url: url, token: nil, identity: given),
                sliceStorage: storage, identityStorage: storage, logger: logger)
            try await withAgent(agent) {
                #expect(await eventually { await fake.connectionCount == 1 })
                let objects = [F.httpAction("notify")]
                await fake.send(F.snapshot(5, objects))
                #expect(await eventually { await agent.state.revision == 5 })
                await fake.send(
                    F.diff(6, base: 5, upserts: [F.httpAction("other")], after: objects, digest: "sha256:" + String(repeating: "f", count: 64)))
                #expect(await eventually { await fake.reports.contains { $0.reason == "DigestMismatch" && !$0.synced } })
                #expect(await eventually { await fake.connectionCount == 2 })
                let again = try #require(await fake.sliceRequests.last)
                #expect(again.revision == "0" && again.digest == nil)
                #expect(await agent.state.revision == 5)
                #expect(storage.loadSlice()?.revision == 5)
            }
        }
    }

    @Test func aBrokenStreamMakesTheAgentReconnectNotStop() async throws {
        let fake = FakeController()
        try await FakeController.serve(fake) { url, identity in
            let storage = InMemoryAgentStorage()
            let given = AgentIdentity(runner: "web-1", credential: "cred-for-web-1", caPEM: identity.caCertificatePEM)
            let agent = Agent(
                configuration: try configuration(url: url, token: nil, identity: given),
                sliceStorage: storage, identityStorage: storage, logger: logger)
            try await withAgent(agent) {
                #expect(await eventually { await fake.connectionCount == 1 })
                await fake.send(F.snapshot(5, [F.httpAction("notify")]))
                #expect(await eventually { await agent.state.revision == 5 })
                await fake.sendRaw("{\"this is\": \"not a slice message\"}\n")
                #expect(await eventually { await fake.connectionCount == 2 })
                let again = try #require(await fake.sliceRequests.last)
                #expect(again.revision == "5")
                // The controller is unavailable for a while; the agent keeps serving and keeps trying.
                await fake.setSliceFailure((.serviceUnavailable, "starting"))
                await fake.disconnect()
                #expect(await eventually { await fake.sliceRequests.count >= 5 })
                #expect(await agent.state.currentSlice.revision == 5)
                await fake.setSliceFailure(nil)
                #expect(await eventually { await fake.connectionCount == 3 })
            }
        }
    }

    @Test func manyAgentsShareOneClientInOneProcess() async throws {
        let fake = FakeController()
        try await FakeController.serve(fake) { url, identity in
            let count = 40
            let http = Agent.makeHTTPClient(maximumConnections: count + 16)
            let agents = try (0..<count).map { index in
                let given = AgentIdentity(runner: "sim-\(index)", credential: "cred-for-web-1", caPEM: identity.caCertificatePEM)
                var configuration = try configuration(url: url, token: nil, identity: given)
                configuration.name = "sim-\(index)"
                let storage = InMemoryAgentStorage()
                return Agent(
                    configuration: configuration, sliceStorage: storage, identityStorage: storage, httpClient: http,
                    logger: logger)
            }
            await withThrowingTaskGroup(of: Void.self) { group in
                for agent in agents { group.addTask { try await agent.run() } }
                defer { group.cancelAll() }
                #expect(await eventually { await fake.connectionCount == count })
                await fake.broadcast(F.snapshot(9, [F.httpAction("notify")]))
                #expect(await eventually {
                    let reports = await fake.reports.filter { $0.observedSliceRevision == 9 && $0.synced }
                    return reports.count >= count
                })
                for agent in agents { #expect(await agent.state.revision == 9) }
            }
            try await http.shutdown()
        }
    }

    @Test func servesTheSavedSliceBeforeTheControllerAnswers() async throws {
        let saved = RunnerSlice(revision: 4, objects: [F.httpAction("notify")])
        let storage = InMemoryAgentStorage(slice: saved)
        let agent = Agent(
            configuration: try configuration(url: "https://127.0.0.1:1", token: nil),
            sliceStorage: storage, identityStorage: storage, logger: logger)
        #expect(await agent.state.currentSlice == saved)
    }
}
