/// UUIDs as lowercase text, for object uids and event ids, from the standard library's system generator
/// (`getrandom(2)`): Foundation's `UUID()` opens, reads and closes `/dev/urandom` every time, 2 % of the controller's
/// CPU at thousands of events a second.
public enum RandomUUID {
    /// A random (version 4) UUID.
    public static func make() -> String {
        var bytes = randomBytes()
        bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        return text(of: bytes)
    }

    /// A time-ordered (version 7) UUID: the first 48 bits are `milliseconds` since the Unix epoch, the other 74 bits
    /// that are not version or variant are random. Ids made one after another sort in about the order they were
    /// made, so an index on them grows at its end: a random id lands on a random page of the index, and each such
    /// page is written again at the next commit.
    public static func timeOrdered(milliseconds: Int64) -> String {
        var bytes = randomBytes()
        let time = UInt64(max(0, milliseconds)) & 0xFFFF_FFFF_FFFF
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: time >> UInt64(8 * (5 - index))) }
        bytes[6] = (bytes[6] & 0x0F) | 0x70  // version 7
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        return text(of: bytes)
    }

    private static func randomBytes() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for _ in 0..<2 {
            let word = generator.next()
            for shift in stride(from: 0, to: 64, by: 8) {
                bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return bytes
    }

    private static func text(of bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
