import Testing

@testable import Mail

@Suite(.timeLimit(.minutes(5))) struct SMTPReplyParserTests {
    func replies(_ chunks: [String]) throws -> [SMTPReply] {
        var parser = SMTPReplyParser()
        var result: [SMTPReply] = []
        for chunk in chunks {
            parser.feed(chunk.utf8)
            while let reply = try parser.next() { result.append(reply) }
        }
        return result
    }

    @Test func singleLine() throws {
        #expect(
            try replies(["220 mail.example.com ESMTP ready\r\n"])
                == [SMTPReply(code: 220, lines: ["mail.example.com ESMTP ready"])])
    }

    @Test func multiLineSplitAcrossReads() throws {
        let parsed = try replies([
            "250-mail.example.com\r\n250-STARTTLS\r", "\n250-AUTH PLAIN LOGIN\r\n250 SIZE", " 1000\r\n",
        ])
        let lines = ["mail.example.com", "STARTTLS", "AUTH PLAIN LOGIN", "SIZE 1000"]
        #expect(parsed == [SMTPReply(code: 250, lines: lines)])
        #expect(parsed[0].extensions == ["STARTTLS": [], "AUTH": ["PLAIN", "LOGIN"], "SIZE": ["1000"]])
    }

    @Test func bareLineFeedsAndBareCodes() throws {
        #expect(
            try replies(["250-first\n250\n354 go ahead\n"]) == [
                SMTPReply(code: 250, lines: ["first", ""]), SMTPReply(code: 354, lines: ["go ahead"]),
            ])
    }

    @Test func incompleteReplyWaits() throws {
        #expect(try replies(["250-first\r\n250 sec"]).isEmpty)
    }

    @Test func codeChangeInsideAReplyIsAnError() {
        #expect(throws: SMTPReplyParser.Failure(message: "a multi-line reply changed its code from 250 to 550")) {
            try replies(["250-first\r\n550 second\r\n"])
        }
    }

    @Test func nonSMTPTextIsAnError() {
        #expect(throws: SMTPReplyParser.Failure.self) { try replies(["HTTP/1.1 400 Bad Request\r\n"]) }
        #expect(throws: SMTPReplyParser.Failure.self) { try replies(["250_x\r\n"]) }
        #expect(throws: SMTPReplyParser.Failure.self) { try replies([String(repeating: "2", count: 5000)]) }
    }

    @Test func pendingInputIsSeen() throws {
        var parser = SMTPReplyParser()
        parser.feed("220 go ahead\r\n".utf8)
        #expect(parser.hasPendingInput)
        _ = try parser.next()
        #expect(!parser.hasPendingInput)
        parser.feed("220 go ahead\r\n250 injected".utf8)
        _ = try parser.next()
        #expect(parser.hasPendingInput)
    }

    @Test func repliesBeforeAnErrorAreStillDelivered() throws {
        var parser = SMTPReplyParser()
        parser.feed("220 hi\r\nnonsense\r\n".utf8)
        #expect(try parser.next()?.code == 220)
        #expect(throws: SMTPReplyParser.Failure.self) { try parser.next() }
    }
}
