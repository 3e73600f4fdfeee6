import Crypto
import Foundation
import TLSSupport

/// The digest both sides compute over a whole slice, so an agent can prove it holds exactly what was sent.
public enum SliceDigest {
    /// SHA-256 of the slice objects sorted by kind and name, as canonical JSON: `sha256:<hex>`.
    public static func digest(of objects: [SliceObject]) -> String {
        let sorted = objects.sorted { $0.key < $1.key }
        let canonical = (try? JSONValue(encoding: sorted))?.jsonData() ?? Data()
        return "sha256:" + Hex.encode(SHA256.hash(data: canonical))
    }
}
