import Foundation
import Resources
import Testing

@Suite(.timeLimit(.minutes(1))) struct RandomUUIDTests {
    @Test func aRandomUUIDIsAVersion4UUIDInLowercaseAndNeverRepeats() {
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let text = RandomUUID.make()
            #expect(text.count == 36)
            #expect(text == text.lowercased())
            // Foundation parses it, and reads back the same text.
            #expect(UUID(uuidString: text)?.uuidString.lowercased() == text)
            let characters = Array(text)
            #expect(characters[14] == "4", "version 4: \(text)")
            #expect("89ab".contains(characters[19]), "RFC 4122 variant: \(text)")
            seen.insert(text)
        }
        #expect(seen.count == 10_000)
    }
}
