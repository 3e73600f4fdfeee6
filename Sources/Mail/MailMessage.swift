import Foundation

/// A plain-text message, encoded as RFC 5322 with a MIME UTF-8 body and an RFC 2047 encoded-word subject.
public struct MailMessage: Sendable, Equatable {
    public var from: String
    public var to: [String]
    public var subject: String
    public var body: String
    public var date: Date
    /// The `Message-ID` without angle brackets; a UUID at the sender's domain by default.
    public var messageID: String

    public init(
        from: String, to: [String], subject: String, body: String, date: Date = Date(), messageID: String? = nil
    ) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.date = date
        let domain = from.split(separator: "@").last.map(String.init) ?? "localhost"
        self.messageID = messageID ?? "\(UUID().uuidString.lowercased())@\(domain)"
    }

    /// The longest line a 7bit body may have before it is sent as base64 (RFC 5322 allows 998).
    static let maximumPlainLineLength = 998

    /// The whole message with CRLF line ends, before dot-stuffing.
    public func encoded() -> String {
        var headers = [
            "Date: \(Self.dateText(date))",
            "From: \(from)",
            "To: \(to.joined(separator: ",\r\n "))",
            "Subject: \(Self.encodedHeaderText(subject))",
            "Message-ID: <\(messageID)>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=UTF-8",
        ]
        let lines = Self.normalizedLines(body)
        let isPlain =
            body.utf8.allSatisfy { $0 < 0x80 && $0 != 0 }
            && lines.allSatisfy { $0.utf8.count <= Self.maximumPlainLineLength }
        let content: String
        if isPlain {
            headers.append("Content-Transfer-Encoding: 7bit")
            content = lines.joined(separator: "\r\n")
        } else {
            headers.append("Content-Transfer-Encoding: base64")
            let encoded = Data(lines.joined(separator: "\r\n").utf8).base64EncodedString()
            content = stride(from: 0, to: encoded.utf8.count, by: 76).map { start in
                let from = encoded.utf8.index(encoded.startIndex, offsetBy: start)
                let end = encoded.utf8.index(from, offsetBy: min(76, encoded.utf8.count - start))
                return String(encoded[from..<end])
            }.joined(separator: "\r\n")
        }
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + content + "\r\n"
    }

    /// The bytes sent after DATA: lines that start with `.` get another (RFC 5321 §4.5.2), bare LFs become CRLF,
    /// and the terminating `.` line is added.
    public static func dotStuffed(_ text: String) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count + 64)
        for line in normalizedLines(text) {
            if line.utf8.first == UInt8(ascii: ".") { output.append(UInt8(ascii: ".")) }
            output += line.utf8
            output += [0x0D, 0x0A]
        }
        // A text ending in a line break yields an empty last line, already ended above.
        if text.hasSuffix("\n") || text.hasSuffix("\r\n") { output.removeLast(2) }
        output += Array(".\r\n".utf8)
        return output
    }

    /// `text` split into lines at CRLF, LF or a lone CR.
    static func normalizedLines(_ text: String) -> [String] {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// ASCII text as it is, on one line; other text as RFC 2047 `=?UTF-8?B?…?=` words of at most 75 characters,
    /// each holding whole characters, folded onto continuation lines.
    static func encodedHeaderText(_ text: String) -> String {
        let line = String(text.map { $0.isNewline ? " " : $0 })
        let isPlain = line.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F } && line.utf8.count <= 900
        if isPlain && !line.contains("=?") { return line }
        // 45 bytes of UTF-8 make 60 of base64: with `=?UTF-8?B?` and `?=` a word stays under 75.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in line {
            let bytes = Array(character.utf8)
            if !chunk.isEmpty && chunk.count + bytes.count > 45 {
                words.append(word(chunk))
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append(word(chunk)) }
        return words.joined(separator: "\r\n ")
    }

    private static func word(_ bytes: [UInt8]) -> String {
        "=?UTF-8?B?\(Data(bytes).base64EncodedString())?="
    }

    /// RFC 5322 `Tue, 01 Dec 2026 21:09:17 +0000`.
    static func dateText(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
