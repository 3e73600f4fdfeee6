/// The file format of kept run output, shared by the controller's output store and the agent's backlog of unsent
/// output: records of one byte for the stream (0 stdout, 1 stderr), four for the length (big-endian), then the
/// bytes; and file names made from run UIDs and runner names.
public enum OutputRecords {
    /// The records of `segments`, in order.
    public static func encode(_ segments: some Sequence<OutputBuffer.Segment>) -> [UInt8] {
        var bytes: [UInt8] = []
        for segment in segments {
            bytes.append(segment.stream == .stdout ? 0 : 1)
            bytes += bigEndian(UInt64(segment.bytes.count), width: 4)
            bytes += segment.bytes
        }
        return bytes
    }

    /// The segments recorded in `bytes`, and whether every byte belonged to a whole record (false when the last
    /// record was cut short, e.g. by a crash: the records before it are returned).
    public static func decode(_ bytes: ArraySlice<UInt8>) -> (segments: [OutputBuffer.Segment], isComplete: Bool) {
        var segments: [OutputBuffer.Segment] = []
        var index = bytes.startIndex
        while index + 5 <= bytes.endIndex {
            let count = Int(integer(bytes[(index + 1)..<(index + 5)]))
            guard bytes[index] <= 1, index + 5 + count <= bytes.endIndex else { return (segments, false) }
            let stream: RunOutputStream = bytes[index] == 0 ? .stdout : .stderr
            segments.append(.init(stream: stream, bytes: Array(bytes[(index + 5)..<(index + 5 + count)])))
            index += 5 + count
        }
        return (segments, index == bytes.endIndex)
    }

    /// `value` as `width` bytes, big-endian.
    public static func bigEndian(_ value: UInt64, width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: value >> UInt64(8 * (width - 1 - $0))) }
    }

    /// The big-endian integer in `bytes`.
    public static func integer(_ bytes: some Collection<UInt8>) -> UInt64 {
        bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    /// `name` with everything but `[A-Za-z0-9_-]` percent-encoded, so it is one safe path component.
    public static func fileName(_ name: String) -> String {
        var result = ""
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                result.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result.isEmpty ? "%00" : result
    }
}
