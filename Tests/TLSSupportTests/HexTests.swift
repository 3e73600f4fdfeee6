import TLSSupport
import Testing

@Suite(.timeLimit(.minutes(5))) struct HexTests {
    @Test func encodesEveryByteAsTwoDigitsMostSignificantFirst() {
        #expect(Hex.encode([0x00, 0x01, 0x0f, 0x10, 0xa0, 0xff]) == "00010f10a0ff")
        #expect(Hex.encode([0x00, 0x01, 0x0f, 0x10, 0xa0, 0xff], uppercase: true) == "00010F10A0FF")
        #expect(Hex.encode([UInt8]()) == "")
        #expect(Hex.encode(UInt8.min...UInt8.max).count == 512)
    }

    @Test func recognisesDigitsOfEitherCase() {
        let digits = Set("0123456789abcdefABCDEF".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(Hex.isDigit(byte) == digits.contains(byte), "byte \(byte)")
        }
    }
}
