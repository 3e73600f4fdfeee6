/// Hexadecimal text of bytes: the one encoding every digest, token and escape in steady uses.
public enum Hex {
    private static let lowercaseDigits = Array("0123456789abcdef".utf8)
    private static let uppercaseDigits = Array("0123456789ABCDEF".utf8)

    /// Two hex digits per byte, most significant first (`[0x0f, 0xa0]` is `"0fa0"`).
    /// - Parameters:
    ///   - bytes: The bytes to encode, such as a SHA-256 digest.
    ///   - uppercase: Whether to use `A`–`F` rather than `a`–`f`.
    public static func encode<Bytes: Sequence<UInt8>>(_ bytes: Bytes, uppercase: Bool = false) -> String {
        let digits = uppercase ? uppercaseDigits : lowercaseDigits
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Whether `byte` is an ASCII hex digit, `0`–`9`, `a`–`f` or `A`–`F`.
    public static func isDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            true
        default:
            false
        }
    }
}
