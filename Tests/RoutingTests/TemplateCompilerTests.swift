import Resources
import Routing
import Testing

/// `{{#a}}` × depth, `x`, `{{/a}}` × depth, with the given open and close tags.
private func nested(_ depth: Int, open: String = "{{#a}}", close: String = "{{/a}}") -> String {
    String(repeating: open, count: depth) + "x" + String(repeating: close, count: depth)
}

/// The error compiling `source` as `spec.body` raises, or nil when it compiles.
private func compileError(_ source: String, limits: TemplateLimits = TemplateLimits()) -> FieldError? {
    do {
        _ = try TemplateCompiler.compile(source, field: "spec.body", limits: limits)
        return nil
    } catch {
        return error
    }
}

// A body nesting 600 sections overflowed the stack of the mustache parser and killed the process that compiled it.
@Test(.timeLimit(.minutes(2))) func deeplyNestedSectionsAreRejectedBeforeParsing() throws {
    let error = try #require(compileError(nested(600)))
    #expect(error.description == "spec.body: sections nest 600 deep; the limit is 16")
    // Past the length limit the body is not even scanned.
    #expect(compileError(nested(100_000))?.reason == .tooLong)
}

@Test(
    .timeLimit(.minutes(2)),
    arguments: [
        ("{{#a}}", "{{/a}}"),
        ("{{^a}}", "{{/a}}"),
        ("{{$a}}", "{{/a}}"),
        ("{{#a}}{{^b}}", "{{/b}}{{/a}}"),
        ("{{<a}}{{$b}}", "{{/b}}{{/a}}"),
        ("{{# a }}", "{{/ a }}"),
        ("{{#uppercased(a)}}", "{{/uppercased(a)}}"),
    ])
func everyKindOfSectionCounts(open: String, close: String) throws {
    let error = try #require(compileError(nested(200, open: open, close: close)))
    #expect(error.path == "spec.body")
    #expect(error.message.hasPrefix("sections nest "))
    #expect(error.message.hasSuffix(" deep; the limit is 16"))
}

@Test(.timeLimit(.minutes(2))) func nestingUpToTheLimitCompiles() throws {
    #expect(compileError(nested(16)) == nil)
    #expect(compileError(nested(17))?.message == "sections nest 17 deep; the limit is 16")
    #expect(compileError(nested(3), limits: TemplateLimits(maxDepth: 2))?.message == "sections nest 3 deep; the limit is 2")
    // Siblings do not nest: a thousand sections one after another are fine.
    #expect(compileError(String(repeating: "{{#a}}x{{/a}}", count: 1000)) == nil)
}

// Changing the delimiters must not hide sections from the check.
@Test(.timeLimit(.minutes(2))) func setDelimiterTagsCannotHideSections() throws {
    let custom = "{{=<% %>=}}" + nested(600, open: "<%#a%>", close: "<%/a%>")
    #expect(compileError(custom)?.message == "sections nest 600 deep; the limit is 16")
    let unusual = "{{=[[ ]]=}}" + nested(600, open: "[[#a]]", close: "[[/a]]")
    #expect(compileError(unusual)?.message == "sections nest 600 deep; the limit is 16")
    // Delimiters set inside a section end with it.
    let scoped = "{{#a}}{{=<% %>=}}<%/a%>" + nested(600, open: "<%#a%>", close: "<%/a%>")
    #expect(compileError(scoped) == nil)
    let outer = "{{#a}}{{=<% %>=}}<%/a%>" + nested(600)
    #expect(compileError(outer)?.message == "sections nest 600 deep; the limit is 16")
    // A delimiter followed by a line break is text to the parser, which goes on reading tags after it.
    #expect(compileError("{{\n" + nested(600))?.message == "sections nest 600 deep; the limit is 16")
    #expect(compileError("{{=<% %>=}}<%\r\n" + nested(600, open: "<%#a%>", close: "<%/a%>")) != nil)
    // Back and forth: 40 levels under each pair of delimiters.
    let mixed = nested(10, open: "{{#a}}", close: "") + "{{=<% %>=}}" + nested(10, open: "<%#b%>", close: "<%/b%>")
        + "<%={{ }}=%>" + String(repeating: "{{/a}}", count: 10)
    #expect(compileError(mixed)?.message == "sections nest 20 deep; the limit is 16")
    // Old delimiters are plain text once changed, and the new ones compile.
    #expect(compileError("{{=<% %>=}}" + nested(600)) == nil)
    #expect(compileError("{{=<% %>=}}" + nested(16, open: "<%#a%>", close: "<%/a%>")) == nil)
}

// The check reads comments as the parser does: a set-delimiter tag inside a comment changes nothing.
@Test(.timeLimit(.minutes(2))) func commentsAreSkippedAsTheParserSkipsThem() throws {
    // The comment ends at the first `}}`, which belongs to the commented-out tag; `<%#a%>` is then text.
    let commented = "{{! {{=<% %>=}} }}" + nested(600, open: "<%#a%>", close: "<%/a%>")
    #expect(compileError(commented) == nil)
    // Sections inside a comment are not sections.
    #expect(compileError("{{!" + String(repeating: "{{#a", count: 600) + "}}") == nil)
}

// swift-mustache traps on `{{=| |=}}|#a||/a|`: it steps two characters back from the `/` to find the section's end.
@Test(.timeLimit(.minutes(2))) func oneCharacterDelimitersAreRejected() throws {
    let error = try #require(compileError("{{=| |=}}|#a||/a|"))
    #expect(error.message.hasPrefix("a set-delimiter tag chooses the one-character start delimiter \"|\""))
    #expect(compileError("{{=| |=}}hello") != nil)
    #expect(compileError("{{=<% %>=}}<%#a%><%/a%>") == nil)
    // A set-delimiter tag inside a comment sets nothing.
    #expect(compileError("{{! {{=| |=}} }}") == nil)
}

@Test(.timeLimit(.minutes(2))) func transformChainsAreBounded() throws {
    let chain = "{{" + String(repeating: "f(", count: 20) + "x" + String(repeating: ")", count: 20) + "}}"
    #expect(compileError(chain)?.message == "a tag applies 20 transforms; the limit is 8")
    #expect(compileError("{{uppercased(reversed(name))}}") == nil)
}

@Test(.timeLimit(.minutes(2))) func longBodiesAreRejected() throws {
    let long = String(repeating: "x", count: 20_000)
    let error = try #require(compileError(long))
    #expect(error.description == "spec.body: template is 20000 bytes long; the limit is 16384")
    #expect(error.reason == .tooLong)
    #expect(compileError(long, limits: TemplateLimits(maxLength: 20_000)) == nil)
}

@Test(.timeLimit(.minutes(2))) func syntaxErrorsKeepTheirPosition() throws {
    #expect(compileError("{{#a}}x")?.description.hasPrefix("spec.body: 1:") == true)
    #expect(compileError("{{#a}}x{{/b}}")?.message.contains("section closed with a different name") == true)
}

// An email action's subject is a template too: admission compiles it and names the field.
@Test(.timeLimit(.minutes(2))) func admissionRejectsABrokenEmailSubject() throws {
    func action(subject: String) -> JSONValue {
        [
            "apiVersion": "steady.dev/v1", "kind": "Action", "metadata": ["name": "mail"],
            "spec": [
                "type": "email",
                "email": [
                    "host": "smtp.example.com", "from": "a@example.com", "to": ["b@example.com"],
                    "subject": .string(subject),
                ],
            ],
        ]
    }
    _ = try Admission.admit(Kinds.action, action(subject: "{{input.image}} has findings"))
    do {
        _ = try Admission.admit(Kinds.action, action(subject: "{{#input.image}} never closed"))
        Issue.record("a subject with an unclosed section was admitted")
    } catch {
        #expect(error.description.hasPrefix("spec.email.subject: 1:"))
    }
}

// Admission runs the same check, for the title as well as the body.
@Test(.timeLimit(.minutes(2))) func admissionRejectsDeepTemplatesNamingTheField() throws {
    let template: JSONValue = [
        "apiVersion": "steady.dev/v1", "kind": "Template", "metadata": ["name": "deep"],
        "spec": ["type": "mustache", "title": .string(nested(20)), "body": .string(nested(600))],
    ]
    do {
        _ = try Admission.admit(Kinds.template, template)
        Issue.record("a 600-deep template was admitted")
    } catch {
        #expect(
            error.description
                == "spec.title: sections nest 20 deep; the limit is 16; spec.body: sections nest 600 deep; the limit is 16")
    }
}
