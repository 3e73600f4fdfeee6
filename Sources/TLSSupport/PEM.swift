import Foundation

/// PEM text (RFC 7468): base64 of DER bytes in 64-column lines between `-----BEGIN LABEL-----` and
/// `-----END LABEL-----`.
public enum PEM {
    /// The PEM form of `der` under `label` (`CERTIFICATE`, `PRIVATE KEY`, ...), ending in a newline.
    public static func encode(der: [UInt8], label: String) -> String {
        let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(body)\n-----END \(label)-----\n"
    }
}
