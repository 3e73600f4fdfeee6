import Agent
import Resources
import Testing

/// The agent validates every slice object itself: a controller, or whoever impersonates one, cannot crash it.
@Suite(.timeLimit(.minutes(5))) struct SliceValidatorTests {
    static let deepBody = String(repeating: "{{#a}}", count: 600) + "x" + String(repeating: "{{/a}}", count: 600)

    // Compiling this body overflowed the stack of the mustache parser and killed the agent.
    @Test func aDeeplyNestedTemplateIsInvalidNotACrash() {
        let template = SliceFixtures.template("deep", body: Self.deepBody)
        let validator = SliceValidator(allowsExec: false)
        #expect(
            validator.problem(with: template.object, key: template.key)
                == .invalid("spec.body: sections nest 600 deep; the limit is 16"))
    }

    @Test func aSliceHoldingOneIsRefusedAndTheLastGoodSliceStays() {
        let good = [SliceFixtures.template("summary")]
        var sync = SliceSynchronizer(
            lastGood: RunnerSlice(revision: 1, objects: good), validator: SliceValidator(allowsExec: false))
        sync.startConnection()
        let deep = SliceFixtures.template("deep", body: Self.deepBody)
        #expect(sync.handle(SliceFixtures.snapshot(2, good + [deep])) == .report)
        #expect(sync.status.reason == SliceValidator.Reason.invalidSlice)
        #expect(
            sync.status.message?.contains("Template/deep: spec.body: sections nest 600 deep") == true, "\(sync.status)")
        #expect(sync.applied.revision == 1)
    }
}
