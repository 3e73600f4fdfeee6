import Agent
import Testing

@Suite(.timeLimit(.minutes(5))) struct AgentConfigurationTests {
    @Test func acceptsAGoodConfiguration() throws {
        let configuration = AgentConfiguration(
            controllerURL: "https://ctl.example:7443", name: "web-1",
            labels: try AgentConfiguration.parseLabels("role=web, site=paris"))
        try configuration.validate()
        #expect(configuration.labels == ["role": "web", "site": "paris"])
    }

    @Test(arguments: [
        ("http://ctl:7443", "web-1", "the scheme must be https"),
        ("ctl:7443", "web-1", "https"),
        ("https://ctl:7443/api", "web-1", "without path"),
        ("https://ctl:7443", "Web_1", "--name"),
    ])
    func refusesBadFlags(url: String, name: String, expected: String) {
        do {
            try AgentConfiguration(controllerURL: url, name: name).validate()
            Issue.record("\(url) \(name) should be refused")
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test func takesSeveralControllersSeparatedByCommas() throws {
        let configuration = AgentConfiguration(controllerURL: "https://a:7443, https://b:7443,", name: "web-1")
        try configuration.validate()
        #expect(configuration.controllerURLs == ["https://a:7443", "https://b:7443"])
        #expect(throws: AgentError.self) {
            try AgentConfiguration(controllerURL: "https://a:7443,http://b:7443", name: "web-1").validate()
        }
        #expect(throws: AgentError.self) { try AgentConfiguration(controllerURL: " , ", name: "web-1").validate() }
    }

    @Test func refusesBadLabels() throws {
        #expect(throws: AgentError.self) { try AgentConfiguration.parseLabels("role") }
        #expect(throws: AgentError.self) { try AgentConfiguration.parseLabels("a=1,a=2") }
        let labels = try AgentConfiguration.parseLabels("role=not valid!")
        #expect(throws: AgentError.self) {
            try AgentConfiguration(controllerURL: "https://ctl:7443", name: "web-1", labels: labels).validate()
        }
    }
}
