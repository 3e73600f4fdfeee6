import Foundation

/// A TCP forwarder on a loopback port to another loopback port, that a test can cut to partition one process
/// from a server (e.g. one controller from etcd) while the others still reach it.
public final class TCPProxy: @unchecked Sendable {
    /// The port to connect to instead of the target's.
    public let port: Int
    private let targetPort: Int
    private let listener: Int32
    // Guarded by `lock`: the sockets of the live connections, and whether the proxy is cut.
    private let lock = NSLock()
    private var sockets: Set<Int32> = []
    private var isCut = false

    /// Listens on a free loopback port and forwards every connection to `targetPort` on 127.0.0.1.
    public init(targetPort: Int) throws {
        self.targetPort = targetPort
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var reuse: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        port = try EtcdServer.freePort()
        var address = EtcdServer.loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            close(listener)
            throw ControllerProcessError(message: "the proxy cannot listen on port \(port): errno \(errno)")
        }
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Drops every connection and refuses new ones until `heal()`.
    public func cut() {
        lock.lock()
        isCut = true
        let open = sockets
        sockets = []
        lock.unlock()
        for socket in open { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    /// Forwards new connections again.
    public func heal() {
        lock.lock()
        isCut = false
        lock.unlock()
    }

    /// Stops listening and drops every connection.
    public func stop() {
        cut()
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            lock.lock()
            let refused = isCut
            lock.unlock()
            let upstream = refused ? -1 : connectToTarget()
            guard upstream >= 0 else {
                close(client)
                continue
            }
            lock.lock()
            sockets.formUnion([client, upstream])
            lock.unlock()
            Thread.detachNewThread { [self] in pump(from: client, to: upstream) }
            Thread.detachNewThread { [self] in pump(from: upstream, to: client) }
        }
    }

    private func connectToTarget() -> Int32 {
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = EtcdServer.loopback(port: targetPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if connected != 0 {
            close(upstream)
            return -1
        }
        return upstream
    }

    /// Copies bytes one way until either side closes, then closes both ends of that direction.
    private func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = read(source, &buffer, buffer.count)
            guard count > 0 else { break }
            var offset = 0
            while offset < count {
                let written = buffer[offset..<count].withUnsafeBytes { write(destination, $0.baseAddress, count - offset) }
                guard written > 0 else { break }
                offset += written
            }
            guard offset == count else { break }
        }
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(destination, Int32(SHUT_RDWR))
    }
}
