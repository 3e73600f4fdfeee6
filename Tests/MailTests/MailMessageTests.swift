import Foundation
import Testing

@testable import Mail

@Suite(.timeLimit(.minutes(5))) struct MailMessageTests {
    let date = Date(timeIntervalSince1970: 1_796_159_357)  // Tue, 01 Dec 2026 21:09:17 UTC

    func headers(_ message: MailMessage) -> [String] {
        let text = message.encoded()
        let head = text.components(separatedBy: "\r\n\r\n")[0]
        return head.components(separatedBy: "\r\n")
    }

    @Test func asciiMessageHasEveryHeaderAnd7BitBody() {
        let message = MailMessage(
            from: "alerts@example.com", to: ["a@example.com", "b@example.com"], subject: "3 findings",
            body: "line one\nline two", date: date, messageID: "id-1@example.com")
        #expect(
            message.encoded() == """
                Date: Tue, 01 Dec 2026 21:09:17 +0000\r
                From: alerts@example.com\r
                To: a@example.com,\r
                 b@example.com\r
                Subject: 3 findings\r
                Message-ID: <id-1@example.com>\r
                MIME-Version: 1.0\r
                Content-Type: text/plain; charset=UTF-8\r
                Content-Transfer-Encoding: 7bit\r
                \r
                line one\r
                line two\r

                """)
    }

    @Test func defaultMessageIDIsAtTheSendersDomain() {
        let message = MailMessage(from: "alerts@example.com", to: ["a@example.com"], subject: "s", body: "b")
        #expect(message.messageID.hasSuffix("@example.com"))
        #expect(message.messageID != MailMessage(from: "alerts@example.com", to: [], subject: "", body: "").messageID)
    }

    @Test func utf8BodyIsBase64InShortLines() throws {
        let body = String(repeating: "Schwachstelle gefunden: ü ✓\n", count: 20)
        let message = MailMessage(from: "a@example.com", to: ["b@example.com"], subject: "s", body: body)
        let encoded = message.encoded()
        #expect(encoded.contains("Content-Transfer-Encoding: base64\r\n"))
        let content = try #require(encoded.components(separatedBy: "\r\n\r\n").last)
        let lines = content.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.allSatisfy { $0.utf8.count <= 76 })
        let decoded = try #require(Data(base64Encoded: lines.joined()))
        #expect(String(decoding: decoded, as: UTF8.self) == body.replacingOccurrences(of: "\n", with: "\r\n"))
    }

    @Test func nonASCIISubjectIsEncodedWordsOfWholeCharacters() throws {
        let subject = String(repeating: "Überprüfung 🚨 ", count: 8)
        let encoded = MailMessage.encodedHeaderText(subject)
        let words = encoded.components(separatedBy: "\r\n ")
        #expect(words.count > 1)
        var bytes: [UInt8] = []
        for word in words {
            #expect(word.utf8.count <= 75)
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
            let payload = try #require(Data(base64Encoded: String(word.dropFirst(10).dropLast(2))))
            // Each word decodes on its own: no character is split between two words.
            #expect(String(bytes: payload, encoding: .utf8) != nil)
            bytes += payload
        }
        #expect(String(decoding: bytes, as: UTF8.self) == subject)
    }

    @Test func subjectCannotInjectHeaders() {
        let message = MailMessage(
            from: "a@example.com", to: ["b@example.com"], subject: "hi\r\nBcc: victim@example.com", body: "x")
        #expect(headers(message).contains("Subject: hi Bcc: victim@example.com"))
        #expect(!headers(message).contains { $0.hasPrefix("Bcc:") })
    }

    @Test func dotStuffingDoublesLeadingDotsAndEndsTheData() {
        let stuffed = String(decoding: MailMessage.dotStuffed(".\n..x\nplain\n.end"), as: UTF8.self)
        #expect(stuffed == "..\r\n...x\r\nplain\r\n..end\r\n.\r\n")
        let ended = String(decoding: MailMessage.dotStuffed("a\r\nb\r\n"), as: UTF8.self)
        #expect(ended == "a\r\nb\r\n.\r\n")
    }

    @Test func redactorRemovesThePasswordInEveryForm() {
        let redactor = SMTPRedactor(credentials: SMTPCredentials(username: "u", password: "hunter2"))
        let plain = Data([0, 0x75, 0] + Array("hunter2".utf8)).base64EncodedString()
        let text = redactor.scrub("echo hunter2 \(Data("hunter2".utf8).base64EncodedString()) \(plain)")
        #expect(text == "echo <redacted> <redacted> <redacted>")
        #expect(!SMTPCredentials(username: "u", password: "hunter2").description.contains("hunter2"))
    }
}
