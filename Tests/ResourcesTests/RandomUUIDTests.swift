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

    @Test func aTimeOrderedUUIDIsVersion7AndSortsByItsTime() {
        var previous = ""
        var seen = Set<String>()
        for step in 0..<2_000 {
            let milliseconds: Int64 = 1_764_000_000_000 + Int64(step)
            let text = RandomUUID.timeOrdered(milliseconds: milliseconds)
            #expect(UUID(uuidString: text)?.uuidString.lowercased() == text)
            let characters = Array(text)
            #expect(characters[14] == "7", "version 7: \(text)")
            #expect("89ab".contains(characters[19]), "RFC 4122 variant: \(text)")
            // The first 12 hex digits are the time, so a later millisecond sorts after.
            let digits = text.replacingOccurrences(of: "-", with: "").prefix(12)
            #expect(Int64(digits, radix: 16) == milliseconds)
            #expect(text > previous)
            previous = text
            seen.insert(text)
        }
        #expect(seen.count == 2_000)
        // Within one millisecond the rest is random.
        #expect(RandomUUID.timeOrdered(milliseconds: 5) != RandomUUID.timeOrdered(milliseconds: 5))
    }
}
