import Agent
import Testing

/// `--run-command` is split into words without a shell.
@Suite(.timeLimit(.minutes(5))) struct RunCommandLineTests {
    @Test func splitsOnBlanks() throws {
        #expect(try RunCommandLine.split("/usr/bin/rudder agent run") == ["/usr/bin/rudder", "agent", "run"])
        #expect(try RunCommandLine.split("  /bin/echo \t a\n b  ") == ["/bin/echo", "a", "b"])
    }

    @Test func quotesKeepBlanksAndNothingIsExpanded() throws {
        #expect(try RunCommandLine.split(#"/bin/echo 'a b' "c d" e\ f"#) == ["/bin/echo", "a b", "c d", "e f"])
        #expect(
            try RunCommandLine.split(#"/bin/echo '$HOME' "*" ; | >x"#) == ["/bin/echo", "$HOME", "*", ";", "|", ">x"])
        #expect(
            try RunCommandLine.split(#"/bin/echo "say \"hi\" \\ \n" '' """#) == [
                "/bin/echo", #"say "hi" \ \n"#, "", "",
            ])
        #expect(try RunCommandLine.split(#"/bin/echo a'b c'd"#) == ["/bin/echo", "ab cd"])
    }

    @Test func refusesWhatAShellWouldRefuseAndRelativePrograms() {
        for text in ["/bin/echo 'open", #"/bin/echo "open"#, #"/bin/echo \"#, "", "   ", "rudder agent run"] {
            #expect(throws: AgentError.self, "\(text)") { try RunCommandLine.split(text) }
        }
    }
}
