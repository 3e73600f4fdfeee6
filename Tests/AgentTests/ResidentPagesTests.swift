import Testing

@testable import Agent

@Suite(.timeLimit(.minutes(1))) struct ResidentPagesTests {
    @Test func onlyMappingsOfFilesAreAdvised() {
        let maps = """
            5583a9a00000-5583a9c00000 r--p 00000000 fd:01 1234    /usr/bin/steady-agent
            5583a9c00000-5583aa000000 r-xp 00200000 fd:01 1234    /usr/bin/steady-agent
            5583aa000000-5583aa100000 rw-p 00600000 fd:01 1234    /usr/bin/steady-agent
            5583ab000000-5583ab200000 rw-p 00000000 00:00 0       [heap]
            7f00000000-7f00021000 rw-p 00000000 00:00 0
            7f10000000-7f10001000 r-xp 00000000 fd:01 99      /opt/swift/usr/lib/swift/linux/lib name with spaces.so
            7ffd0000-7ffd2000 r-xp 00000000 00:00 0     [vdso]
            garbage line
            """
        let mappings = ResidentPages.fileMappings(in: maps)
        #expect(mappings.map(\.path) == [
            "/usr/bin/steady-agent", "/usr/bin/steady-agent", "/usr/bin/steady-agent",
            "/opt/swift/usr/lib/swift/linux/lib name with spaces.so",
        ])
        #expect(mappings.map(\.isWritable) == [false, false, true, false])
        #expect(mappings.first == .init(start: 0x5583a9a00000, end: 0x5583a9c00000, isWritable: false, path: "/usr/bin/steady-agent"))
    }

    /// Only a read-only mapping that smaps shows unwritten may be dropped: dropping a relocated (written) page would
    /// bring back the file's bytes, and a writable one could be written meanwhile.
    @Test func onlyUnwrittenReadOnlyMappingsInSmapsMayBeDropped() {
        let smaps = """
            5583a9a00000-5583a9c00000 r-xp 00000000 fd:01 1234    /usr/bin/steady-agent
            Size:               2048 kB
            Rss:                 512 kB
            Anonymous:             0 kB
            VmFlags: rd ex mr mw me
            5583a9c00000-5583aa000000 r--p 00200000 fd:01 1234    /usr/bin/steady-agent
            Rss:                1252 kB
            Anonymous:          1252 kB
            VmFlags: rd mr mw me ac
            5583aa000000-5583aa100000 rw-p 00600000 fd:01 1234    /usr/bin/steady-agent
            Anonymous:             0 kB
            5583ab000000-5583ab200000 rw-p 00000000 00:00 0       [heap]
            Anonymous:           136 kB
            7f10000000-7f10001000 r--p 00000000 fd:01 99      /usr/lib/x86_64-linux-gnu/libc.so.6
            Anonymous:             0 kB
            """
        let mappings = ResidentPages.fileMappings(in: smaps)
        #expect(mappings.map(\.anonymousKilobytes) == [0, 1252, 0, 0])
        #expect(mappings.map(\.isUnwrittenReadOnly) == [true, false, false, true])
        // /proc/self/maps does not say what was written: nothing is dropped on its word.
        let maps = "5583a9a00000-5583a9c00000 r-xp 00000000 fd:01 1234    /usr/bin/steady-agent"
        #expect(ResidentPages.fileMappings(in: maps).map(\.isUnwrittenReadOnly) == [false])
    }

    /// A read of a `/proc` file gives at most a page of it, and `String(contentsOfFile:)` reads once: the stack, near
    /// the end of smaps, is missed that way.
    @Test func readsAProcFileToItsEnd() {
        #if os(Linux)
            let smaps = ResidentPages.readToEnd("/proc/self/smaps") ?? ""
            #expect(smaps.utf8.count > 4096)
            #expect(smaps.contains("[stack]"))
        #endif
    }

    /// Advising this test process's own mappings is harmless: its pages come back as it runs on.
    @Test func releasingAdvisesThisProcesssFileMappingsAndItRunsOn() {
        #if os(Linux)
            #expect(ResidentPages.releaseStartupPages() > 0)
            #expect(ResidentPages.fileMappings(in: "").isEmpty)
        #endif
    }
}
