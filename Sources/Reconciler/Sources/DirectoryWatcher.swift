import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What `stat` says about one file: enough to tell, without reading it, that its content may have changed.
public struct FileStamp: Sendable, Hashable {
    /// Size in bytes.
    public var size: Int64
    /// Modification time in nanoseconds since 1970.
    public var modificationTime: Int64
    /// Inode number: changes when an editor writes a new file and renames it over the old one.
    public var inode: UInt64

    /// Creates a stamp.
    public init(size: Int64, modificationTime: Int64, inode: UInt64) {
        self.size = size
        self.modificationTime = modificationTime
        self.inode = inode
    }
}

/// The files under a watched directory when a change was seen: equal snapshots mean nothing visible changed.
public struct DirectorySnapshot: Sendable, Equatable {
    /// Regular files (symbolic links to files included) by path relative to the directory, such as `sub/a.yaml`.
    /// Entries whose names start with `.` are left out, as `ManifestDocuments.load` leaves them out.
    public var files: [String: FileStamp]

    /// Creates a snapshot.
    public init(files: [String: FileStamp] = [:]) {
        self.files = files
    }
}

/// Why a directory cannot be watched.
public struct DirectoryWatcherError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The directory or file concerned.
    public var path: String
    /// What went wrong.
    public var message: String

    /// Creates an error.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// Watches a directory tree (Linux inotify) and reports a snapshot after each burst of changes.
///
/// Use `run(yielding:)` from a task you own, such as a child of a task group; cancel that task to stop watching.
/// A snapshot is also reported every `rescanInterval` without any event, because inotify can overflow or miss
/// changes (network file systems, directories created faster than they are watched): compare snapshots to skip
/// work when nothing changed. Half-written files are the consumer's concern: debouncing only makes a burst of
/// writes report once.
public struct DirectoryWatcher: Sendable {
    /// The directory watched, with its subdirectories.
    public let directory: URL
    /// How long the tree must stay quiet after an event before a snapshot is reported.
    public let debounce: Duration
    /// How often a snapshot is reported without any event.
    public let rescanInterval: Duration

    /// Creates a watcher; nothing happens until `run(yielding:)`.
    public init(directory: URL, debounce: Duration = .milliseconds(150), rescanInterval: Duration = .seconds(30)) {
        self.directory = directory
        self.debounce = max(debounce, .zero)
        self.rescanInterval = max(rescanInterval, .milliseconds(10))
    }

    /// Calls `yielding` once at start, then after each burst of changes under the directory (new subdirectories
    /// are watched too), and every `rescanInterval` even without an event. Returns when the calling task is
    /// cancelled; throws `DirectoryWatcherError` when the directory is missing at start or disappears.
    ///
    /// It sleeps until inotify has events or a deadline (the end of a burst, the next rescan) comes, waiting on a
    /// thread of its own so that no task is blocked; the directory walk for a snapshot runs on the caller's
    /// executor.
    public func run(
        isolation: isolated (any Actor)? = #isolation,
        yielding: (DirectorySnapshot) async -> Void
    ) async throws {
        let root = rootPath
        try Self.checkDirectory(root)
        var source = try ChangeSource(root: root)
        // A burst that never goes quiet (a file appended to constantly) still reports at this pace.
        let longestWait = max(debounce * 2, .seconds(1))
        let waiter = try DescriptorWaiter()
        let clock = ContinuousClock()

        await yielding(try Self.snapshot(of: root))
        var lastReport = clock.now
        var burstStart: ContinuousClock.Instant?
        var lastEvent: ContinuousClock.Instant?
        var needsRebuild = false

        while !Task.isCancelled {
            var wakeAt = lastReport + rescanInterval
            if let lastEvent { wakeAt = min(wakeAt, lastEvent + debounce) }
            if let burstStart { wakeAt = min(wakeAt, burstStart + longestWait) }
            // A descriptor about to be rebuilt is not waited on: a broken one could be readable forever.
            await waiter.wait(for: needsRebuild ? nil : source.descriptor, timeout: wakeAt - clock.now)
            if Task.isCancelled { return }
            let outcome = source.poll()
            let now = clock.now
            if outcome.changed {
                lastEvent = now
                burstStart = burstStart ?? now
            }
            needsRebuild = needsRebuild || outcome.needsRebuild

            let burstDue = lastEvent.map { now - $0 >= debounce } == true
                || burstStart.map { now - $0 >= longestWait } == true
            let rescanDue = now - lastReport >= rescanInterval
            guard burstDue || rescanDue else { continue }

            // Watches are rebuilt before the walk, so nothing changed after the walk can go unnoticed.
            if needsRebuild || rescanDue {
                try source.rebuild()
                needsRebuild = false
            }
            burstStart = nil
            lastEvent = nil
            let snapshot = try Self.snapshot(of: root)
            if Task.isCancelled { return }
            await yielding(snapshot)
            lastReport = clock.now
        }
    }

    /// The files under the directory now, as `run(yielding:)` reports them.
    public func snapshot() throws -> DirectorySnapshot {
        try Self.snapshot(of: rootPath)
    }

    private var rootPath: String {
        let path = directory.standardizedFileURL.path
        return path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    // MARK: - Walking

    private static func snapshot(of root: String) throws(DirectoryWatcherError) -> DirectorySnapshot {
        try checkDirectory(root)
        var files: [String: FileStamp] = [:]
        for entry in walk(root) {
            if case .file(let stamp) = entry.kind { files[entry.relativePath] = stamp }
        }
        // The root may vanish during the walk: an empty snapshot must not pass for "all files deleted".
        try checkDirectory(root)
        return DirectorySnapshot(files: files)
    }

    fileprivate static func checkDirectory(_ path: String) throws(DirectoryWatcherError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DirectoryWatcherError(path: path, message: "directory does not exist")
        }
        guard isDirectory.boolValue else {
            throw DirectoryWatcherError(path: path, message: "not a directory")
        }
    }

    fileprivate struct Entry {
        enum Kind { case file(FileStamp), directory }
        var relativePath: String
        var kind: Kind
    }

    /// Everything under `root` but hidden entries; links to directories are not followed, so there are no cycles.
    /// Entries that vanish while walking are skipped.
    fileprivate static func walk(_ root: String) -> [Entry] {
        var entries: [Entry] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let directory = relative.isEmpty ? root : root + "/" + relative
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names where !name.hasPrefix(".") {
                let path = relative.isEmpty ? name : relative + "/" + name
                switch inspect(root + "/" + path) {
                case .file(let stamp)?:
                    entries.append(Entry(relativePath: path, kind: .file(stamp)))
                case .directory?:
                    entries.append(Entry(relativePath: path, kind: .directory))
                    pending.append(path)
                case nil:
                    break
                }
            }
        }
        return entries
    }

    /// A real directory, or a regular file reached directly or through links; nil for anything else.
    fileprivate static func inspect(_ path: String) -> Entry.Kind? {
        #if canImport(Glibc)
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        if status.st_mode & S_IFMT == S_IFDIR { return .directory }
        if status.st_mode & S_IFMT == S_IFLNK {
            guard stat(path, &status) == 0 else { return nil }
        }
        guard status.st_mode & S_IFMT == S_IFREG else { return nil }
        return .file(FileStamp(
            size: Int64(status.st_size),
            modificationTime: Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec),
            inode: UInt64(status.st_ino)
        ))
        #else
        let manager = FileManager.default
        guard let attributes = try? manager.attributesOfItem(atPath: path) else { return nil }
        if attributes[.type] as? FileAttributeType == .typeDirectory { return .directory }
        // attributesOfItem does not follow links: read the target's attributes.
        guard let target = try? manager.attributesOfItem(atPath: (path as NSString).resolvingSymlinksInPath),
            target[.type] as? FileAttributeType == .typeRegular
        else { return nil }
        let modified = (target[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return .file(FileStamp(
            size: (target[.size] as? NSNumber)?.int64Value ?? 0,
            modificationTime: Int64(modified * 1_000_000_000),
            inode: (target[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
        ))
        #endif
    }
}

/// What one look at the event source found.
private struct PollOutcome {
    /// Something under the directory changed.
    var changed = false
    /// The watches may no longer match the tree (queue overflow, a directory moved, the root replaced).
    var needsRebuild = false
}

#if canImport(Glibc)

/// inotify watches on every directory of the tree, read through a non-blocking descriptor.
private struct ChangeSource: ~Copyable {
    private let root: String
    /// The inotify descriptor: readable when events are pending.
    private(set) var descriptor: Int32
    /// Watch descriptor → directory path relative to the root ("" for the root).
    private var directories: [Int32: String] = [:]
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    private static let directoryMask = UInt32(
        IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MODIFY
            | IN_ATTRIB
    )
    /// The root is also watched for being moved, so that a directory renamed over it is noticed.
    private static let rootMask = directoryMask | UInt32(IN_MOVE_SELF | IN_ONLYDIR)

    init(root: String) throws(DirectoryWatcherError) {
        let (descriptor, directories) = try Self.watchTree(root)
        self.root = root
        self.descriptor = descriptor
        self.directories = directories
    }

    deinit {
        close(descriptor)
    }

    /// Drains the pending events without blocking; new directories are watched at once, so that files written
    /// into them right after they appear are seen.
    mutating func poll() -> PollOutcome {
        var outcome = PollOutcome()
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK {
                    // Unexpected: start over with a fresh descriptor rather than spin on a broken one.
                    outcome.changed = true
                    outcome.needsRebuild = true
                }
                return outcome
            }
            if count == 0 { return outcome }
            handleEvents(byteCount: count, into: &outcome)
        }
    }

    /// Replaces every watch with fresh ones on the tree as it is now; throws when the root is gone.
    mutating func rebuild() throws(DirectoryWatcherError) {
        try DirectoryWatcher.checkDirectory(root)
        let (fresh, directories) = try Self.watchTree(root)
        close(descriptor)
        descriptor = fresh
        self.directories = directories
    }

    private mutating func handleEvents(byteCount: Int, into outcome: inout PollOutcome) {
        let headerSize = MemoryLayout<inotify_event>.size
        var offset = 0
        while offset + headerSize <= byteCount {
            let (descriptor, mask, nameLength) = buffer.withUnsafeBytes { bytes in
                (
                    bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self),
                    bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                    Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                )
            }
            let nameEnd = min(offset + headerSize + nameLength, byteCount)
            let nameBytes = buffer[(offset + headerSize)..<nameEnd].prefix { $0 != 0 }
            let name = String(decoding: nameBytes, as: UTF8.self)
            offset += headerSize + nameLength
            handle(descriptor: descriptor, mask: mask, name: name, into: &outcome)
        }
    }

    private mutating func handle(descriptor: Int32, mask: UInt32, name: String, into outcome: inout PollOutcome) {
        if mask & UInt32(IN_Q_OVERFLOW) != 0 {
            outcome.changed = true
            outcome.needsRebuild = true
            return
        }
        if mask & UInt32(IN_IGNORED) != 0 {
            // The watch is gone (its directory was deleted); the parent reported the deletion itself.
            let directory = directories.removeValue(forKey: descriptor)
            if directory == "" { outcome.needsRebuild = true }
            return
        }
        guard let directory = directories[descriptor] else { return }
        outcome.changed = true
        if directory == "" && mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
            outcome.needsRebuild = true
        }
        guard mask & UInt32(IN_ISDIR) != 0, !name.hasPrefix(".") else { return }
        let path = directory.isEmpty ? name : directory + "/" + name
        if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 {
            watchSubtree(path)
        } else if mask & UInt32(IN_MOVED_FROM) != 0 {
            // The moved directory keeps its watch under a path that is now wrong.
            outcome.needsRebuild = true
        }
    }

    /// A new inotify descriptor watching the root and every directory below it, with the watches' paths.
    private static func watchTree(_ root: String) throws(DirectoryWatcherError) -> (Int32, [Int32: String]) {
        let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else {
            throw DirectoryWatcherError(path: root, message: "cannot start inotify: \(lastError())")
        }
        let rootWatch = inotify_add_watch(descriptor, root, rootMask)
        guard rootWatch >= 0 else {
            let message = "cannot watch directory: \(lastError())"
            close(descriptor)
            throw DirectoryWatcherError(path: root, message: message)
        }
        var directories = [rootWatch: ""]
        for entry in DirectoryWatcher.walk(root) {
            if case .directory = entry.kind, let watch = addWatch(descriptor, root: root, path: entry.relativePath) {
                directories[watch] = entry.relativePath
            }
        }
        return (descriptor, directories)
    }

    private mutating func watchSubtree(_ path: String) {
        var paths = [path]
        for entry in DirectoryWatcher.walk(root + "/" + path) {
            if case .directory = entry.kind { paths.append(path + "/" + entry.relativePath) }
        }
        for path in paths {
            if let watch = Self.addWatch(descriptor, root: root, path: path) { directories[watch] = path }
        }
    }

    /// Failures below the root (the directory already gone, or the watch limit reached) are left to the rescan.
    private static func addWatch(_ descriptor: Int32, root: String, path: String) -> Int32? {
        let mask = directoryMask | UInt32(IN_ONLYDIR | IN_DONT_FOLLOW)
        let watch = inotify_add_watch(descriptor, root + "/" + path, mask)
        return watch >= 0 ? watch : nil
    }

    private static func lastError() -> String {
        String(cString: strerror(errno))
    }
}

#else

/// Without inotify, the tree is compared with its previous state once a second.
private struct ChangeSource: ~Copyable {
    private let root: String
    private var last: [String: FileStamp] = [:]
    private var lastLook = ContinuousClock.now

    init(root: String) throws(DirectoryWatcherError) {
        self.root = root
        try DirectoryWatcher.checkDirectory(root)
        last = Self.files(root)
    }

    mutating func poll() -> PollOutcome {
        guard ContinuousClock.now - lastLook >= .seconds(1) else { return PollOutcome() }
        lastLook = ContinuousClock.now
        let files = Self.files(root)
        defer { last = files }
        return PollOutcome(changed: files != last, needsRebuild: false)
    }

    mutating func rebuild() throws(DirectoryWatcherError) {
        try DirectoryWatcher.checkDirectory(root)
    }

    private static func files(_ root: String) -> [String: FileStamp] {
        var files: [String: FileStamp] = [:]
        for entry in DirectoryWatcher.walk(root) {
            if case .file(let stamp) = entry.kind { files[entry.relativePath] = stamp }
        }
        return files
    }
}

#endif
