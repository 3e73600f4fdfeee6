import Foundation
import Testing

@testable import Resources

@Suite(.timeLimit(.minutes(5))) struct JSONValueTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Data(text.utf8)) }

    @Test func parsesEveryKindOfValue() throws {
        let value = try parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null], "b": {"c": "d"}, "big": 9223372036854775807} "#)
        #expect(value["a"] == [1, -2, 3.5, 1000.0, true, false, .null])
        #expect(value["b"]?["c"] == "d")
        #expect(value["big"] == .int(Int64.max))
        #expect(try parse("18446744073709551616") == .double(18446744073709551616))
    }

    @Test func stringsAndEscapes() throws {
        #expect(try parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#) == .string("a\"b\\c/d\n\té😀"))
        #expect(try parse(#""héllo""#) == "héllo")
        #expect(throws: JSONParseError.self) { try parse(#""\ud83d""#) }
        #expect(throws: JSONParseError.self) { try parse("\"a\u{01}b\"") }
        #expect(throws: JSONParseError.self) { try parse(#""\x""#) }
    }

    @Test func rejectsMalformedInputWithAnOffset() {
        for text in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "[1] 2", "{\"a\":1,}", "nul"] {
            #expect(throws: JSONParseError.self, "\(text)") { try parse(text) }
        }
        do {
            _ = try parse("[1, 2, x]")
        } catch let error as JSONParseError {
            #expect(error.offset == 7)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    /// Found by the json fuzz target: 1e309 became infinity, which the writer cannot write back as JSON.
    @Test func numbersBeyondADoubleAreRefused() throws {
        for text in ["1e309", "-1e309", "[123456789012340e98901234567890]"] {
            #expect(throws: JSONParseError.self, "\(text)") { try parse(text) }
        }
        #expect(try parse("1.7976931348623157e308") == .double(1.7976931348623157e308))
    }

    @Test func depthIsBounded() {
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(throws: JSONParseError.self) { try parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? parse(fine)) != nil)
    }

    @Test func writesSortedCompactJSONThatRoundTrips() throws {
        let value: JSONValue = ["b": [1, 2.5, "x\"y\n\u{01}"], "a": .null, "c": ["z": true]]
        let text = value.jsonString()
        #expect(text == #"{"a":null,"b":[1,2.5,"x\"y\n\u0001"],"c":{"z":true}}"#)
        #expect(try parse(text) == value)
        #expect(try parse(value.jsonString(pretty: true)) == value)
        #expect(JSONValue.double(.infinity).jsonString() == "null")
        #expect(try parse(JSONValue.double(1).jsonString()) == .double(1))
    }

    @Test func agreesWithFoundationOnRealDocuments() throws {
        let text = #"{"apiVersion":"steady.dev/v1","kind":"Route","metadata":{"name":"r","labels":{"a":"b"}},"spec":{"actions":["x","y"],"input":"input.a == \"b\""}}"#
        let ours = try parse(text)
        let theirs = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == theirs)
    }
}
