import Foundation

// Built two ways. With `-D FUZZING -sanitize=fuzzer,address` (scripts/fuzz), `main` runs libFuzzer's driver over
// the target named by STEADY_FUZZ_TARGET. Built normally, this is a replayer that runs
// a target over files, so every corpus entry and every crash once found is replayed by the test suite.

#if FUZZING
nonisolated(unsafe) private var selectedTarget: FuzzTarget?

/// libFuzzer's driver, for a program that has a `main` of its own.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// SwiftPM links an executable's `main` to `<module>_main`; here it hands over to libFuzzer's driver.
@_cdecl("steady_fuzz_main")
public func steadyFuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    selectTarget()
    var count = argc
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        guard let data else { return 0 }
        selectedTarget?.run(Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> Int32 {
    selectTarget()
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    selectedTarget?.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

func selectTarget() {
    let name = ProcessInfo.processInfo.environment["STEADY_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("set STEADY_FUZZ_TARGET to one of: \(names)\n".utf8))
        exit(2)
    }
    selectedTarget = target
}
#else
@main enum FuzzReplay {
    static func main() {
        exit(replay())
    }
}

/// `steady-fuzz TARGET PATH...`: runs TARGET once over every file (directories are walked).
func replay() -> Int32 {
    let arguments = CommandLine.arguments.dropFirst()
    guard let name = arguments.first, let target = FuzzTarget(rawValue: name), arguments.count > 1 else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
        FileHandle.standardError.write(Data("usage: steady-fuzz \(names) FILE_OR_DIRECTORY...\n".utf8))
        return 2
    }
    var count = 0
    for path in arguments.dropFirst() {
        var files: [String] = []
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            FileHandle.standardError.write(Data("steady-fuzz: \(path): no such file or directory\n".utf8))
            return 1
        }
        if isDirectory.boolValue {
            let entries = (try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? []
            files = entries.sorted().map { "\(path)/\($0)" }.filter { file in
                var isFolder: ObjCBool = false
                return FileManager.default.fileExists(atPath: file, isDirectory: &isFolder) && !isFolder.boolValue
            }
        } else {
            files = [path]
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            target.run(Array(data))
            count += 1
        }
    }
    print("steady-fuzz \(target.rawValue): \(count) inputs replayed, none crashed")
    return 0
}
#endif
