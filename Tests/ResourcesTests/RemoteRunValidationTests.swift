import Testing

@testable import Resources

/// The RemoteRun fields of issue #9 as a manifest author meets them: accepted values, and errors that name the field.
@Suite(.timeLimit(.minutes(5))) struct RemoteRunValidationTests {
    func errors(spec: String) throws -> [String] {
        let yaml = "apiVersion: steady.dev/v1\nkind: RemoteRun\nmetadata: {name: now}\nspec:\n" + spec
        let documents = try ManifestDocuments.parse(yaml, file: "run.yaml")
        return ManifestValidation.objects(from: documents).errors.map(\.description)
    }

    func decoded(spec: String) throws -> RemoteRunSpec {
        let yaml = "apiVersion: steady.dev/v1\nkind: RemoteRun\nmetadata: {name: now}\nspec:\n" + spec
        let result = ManifestValidation.objects(from: try ManifestDocuments.parse(yaml, file: "run.yaml"))
        #expect(result.errors.isEmpty)
        let object = try #require(result.objects.first)
        return try #require(try object.value["spec"]?.decode(as: RemoteRunSpec.self))
    }

    static let prefix = "run.yaml: document 1 (line 1): "

    @Test func everyNewFieldDecodes() throws {
        let spec = try decoded(
            spec: """
                  target: {runners: [web-1, web-2]}
                  command: [/usr/bin/uptime, --pretty]
                  timeout: 30s
                  deliveryTimeout: 10s
                  batchSize: 25%
                  maxErrors: 0
                  suspend: true
                  keepOutput: true
                  ttlSecondsAfterFinished: 3600
                """)
        #expect(spec.command == ["/usr/bin/uptime", "--pretty"])
        #expect(spec.timeout?.seconds == 30)
        #expect(spec.effectiveDeliveryTimeout.seconds == 10)
        #expect(spec.batchSize == .percent(25))
        #expect(spec.maxErrors == .count(0))
        #expect(spec.suspend == true)
        #expect(spec.keepOutput == true)
    }

    @Test func deliveryTimeoutDefaultsToOneMinute() throws {
        let spec = try decoded(spec: "  target: {all: true}\n")
        #expect(spec.effectiveDeliveryTimeout.seconds == 60)
        #expect(spec.maxErrors == nil)
        #expect(spec.command == nil)
    }

    @Test func aRelativeProgramIsRefused() throws {
        let all = try errors(spec: "  target: {all: true}\n  command: [uptime]\n")
        #expect(all.count == 1)
        #expect(all.first?.hasPrefix(Self.prefix + "spec.command[0]: \"uptime\" is not an absolute path") == true)
    }

    @Test func anEmptyArgvIsRefused() throws {
        let all = try errors(spec: "  target: {all: true}\n  command: []\n")
        #expect(all == [Self.prefix + "spec.command: must name the program to run, like [/usr/bin/uptime]"])
    }

    @Test func aNulByteInAnArgumentIsRefused() throws {
        let all = try errors(spec: "  target: {all: true}\n  command: [/bin/echo, \"a\\0b\"]\n")
        #expect(all == [Self.prefix + "spec.command[1]: must not contain a NUL byte"])
    }

    @Test func aConditionKeepsItsPattern() throws {
        let all = try errors(spec: "  target: {all: true}\n  conditions: [ok, \"a;b\"]\n")
        #expect(
            all == [
                Self.prefix + "spec.conditions[1]: invalid condition \"a;b\": must match ^[A-Za-z0-9][A-Za-z0-9_]*$"
            ])
    }

    @Test func aPercentageOutOfRangeIsRefused() throws {
        let all = try errors(spec: "  target: {all: true}\n  maxErrors: 150%\n")
        #expect(all.count == 1)
        #expect(all.first?.hasPrefix(Self.prefix + "spec.maxErrors: invalid value \"150%\"") == true)
        let negative = try errors(spec: "  target: {all: true}\n  batchSize: -2\n")
        #expect(negative.first?.hasPrefix(Self.prefix + "spec.batchSize: must not be negative") == true)
    }

    @Test func aZeroBatchIsRefusedButZeroErrorsIsAllowed() throws {
        let all = try errors(spec: "  target: {all: true}\n  batchSize: 0%\n  maxErrors: 0%\n")
        #expect(all == [Self.prefix + "spec.batchSize: must be at least 1 or 1%; leave it out to run all at once"])
    }

    @Test func aZeroTimeoutIsRefused() throws {
        let all = try errors(spec: "  target: {all: true}\n  timeout: 0s\n  deliveryTimeout: 0ms\n")
        #expect(
            all == [
                Self.prefix + "spec.timeout: must be longer than zero, like 30s or 5m\n"
                    + "  spec.deliveryTimeout: must be longer than zero, like 30s or 5m"
            ])
    }

    @Test func countOrPercentResolvesBatchesUpAndErrorBudgetsDown() {
        #expect(CountOrPercent.percent(10).resolve(total: 15) == 2)
        #expect(CountOrPercent.percent(10).allowance(total: 15) == 1)
        #expect(CountOrPercent.percent(0).allowance(total: 15) == 0)
        #expect(CountOrPercent.count(3).allowance(total: 2) == 3)
    }

    @Test func countsHoldEveryPhase() {
        let counts = RemoteRunSpec.Counts(phases: [.succeeded, .timedOut, .timedOut, .skipped, .refused])
        #expect(counts.total == 5)
        #expect(counts[.timedOut] == 2)
        #expect(counts[.failed] == 0)
        #expect(counts.skipped == 1 && counts.refused == 1 && counts.cancelled == 0 && counts.unreachable == 0)
    }

    @Test func theSchemaDescribesTheNewFields() throws {
        let spec = try #require(Kinds.remoteRun.schema.property("spec"))
        #expect(spec.schema.property("command")?.schema.shape == .array)
        #expect(spec.schema.property("maxErrors") != nil)
        #expect(spec.schema.property("deliveryTimeout")?.schema.pattern != nil)
        #expect(spec.schema.property("suspend")?.schema.shape == .boolean)
        let document = OpenAPI.groupVersionDocument()
        let run = try #require(document["components"]?["schemas"]?["dev.steady.v1.RemoteRun"])
        let described = run["properties"]?["spec"]?["properties"]?["command"]?["description"]?.stringValue
        #expect(described?.contains("--allow-exec") == true)
    }
}
