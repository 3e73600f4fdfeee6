import Crypto
import Foundation

/// The digest both sides compute over a whole slice, so an agent can prove it holds exactly what was sent.
public enum SliceDigest {
    /// SHA-256 of the slice objects sorted by kind and name, as canonical JSON: `sha256:<hex>`.
    public static func digest(of objects: [SliceObject]) -> String {
        let sorted = objects.sorted { $0.key < $1.key }
        let canonical = (try? JSONValue(encoding: sorted))?.jsonData() ?? Data()
        return "sha256:" + SHA256.hash(data: canonical).map { hex($0) }.joined()
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
