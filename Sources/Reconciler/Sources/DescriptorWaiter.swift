import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Waits until a descriptor is readable or a timeout passes, blocked in `poll(2)` on a thread of its own rather
/// than on Swift's cooperative pool; cancelling the waiting task wakes it at once (through a pipe).
///
/// What lets the directory watcher sleep until inotify has something to say, instead of looking every few
/// milliseconds.
final class DescriptorWaiter: Sendable {
    /// The pipe a cancellation writes to: its read end is polled with the descriptor.
    private let wakeDescriptor: Int32
    private let wakeWriteDescriptor: Int32
    private let thread = NIOThreadPool(numberOfThreads: 1)

    init() throws(DirectoryWatcherError) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw DirectoryWatcherError(path: "pipe", message: "cannot create a pipe (errno \(errno))")
        }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        (wakeDescriptor, wakeWriteDescriptor) = (ends[0], ends[1])
        thread.start()
    }

    deinit {
        thread.shutdownGracefully { _ in }
        close(wakeDescriptor)
        close(wakeWriteDescriptor)
    }

    /// Returns when `descriptor` is readable (never, when nil), `timeout` has passed, or the task is cancelled.
    func wait(for descriptor: Int32?, timeout: Duration) async {
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let (wake, wakeWrite) = (wakeDescriptor, wakeWriteDescriptor)
        await withTaskCancellationHandler {
            _ = try? await thread.runIfActive {
                var descriptors = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
                if let descriptor { descriptors.append(pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)) }
                _ = poll(&descriptors, nfds_t(descriptors.count), max(milliseconds, 0))
                if descriptors[0].revents != 0 {
                    // A cancellation woke it: consume the wake-up so the next wait blocks again.
                    var bytes = [UInt8](repeating: 0, count: 64)
                    _ = read(wake, &bytes, bytes.count)
                }
            }
        } onCancel: {
            var one: UInt8 = 1
            _ = write(wakeWrite, &one, 1)
        }
    }
}
