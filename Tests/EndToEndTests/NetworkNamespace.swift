import Foundation
import SteadyTesting

/// A network namespace joined to this one by a veth pair (iproute2), for a test that cuts or slows one agent's link
/// to the controller while the others keep theirs; `remove()` deletes both.
struct NetworkNamespace {
    /// The namespace's name.
    let name: String
    /// The veth end in this namespace, where the controller is reached.
    let hostInterface: String
    /// The address of ``hostInterface``, which processes in the namespace connect to.
    let hostAddress: String

    /// Whether this process may create network namespaces: root, with `ip` installed, in a kernel and a sandbox
    /// that allow it (tried for real).
    static let isAvailable: Bool = {
        guard geteuid() == 0, let namespace = try? NetworkNamespace() else { return false }
        namespace.remove()
        return true
    }()

    /// Whether `tc netem` works on a veth here too (the kernel has sch_netem).
    static let hasNetem: Bool = {
        guard isAvailable, let namespace = try? NetworkNamespace() else { return false }
        defer { namespace.remove() }
        return (try? namespace.delay(milliseconds: 1)) != nil
    }()

    /// Creates the namespace and the veth pair, with a /30 of 10.213.0.0/16 between them; nothing is left behind
    /// when a step fails.
    init() throws {
        let id = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        name = "steady-\(id)"
        hostInterface = "sth\(id)"
        let peer = "stn\(id)"
        let base = "10.213.\(Int.random(in: 0...255)).\(Int.random(in: 0...63) * 4)"
        let prefix = base.split(separator: ".").dropLast().joined(separator: ".")
        let last = Int(base.split(separator: ".").last ?? "") ?? 0
        hostAddress = "\(prefix).\(last + 1)"
        let peerAddress = "\(prefix).\(last + 2)"
        let steps = [
            ["netns", "add", name],
            ["link", "add", hostInterface, "type", "veth", "peer", "name", peer],
            ["link", "set", peer, "netns", name],
            ["addr", "add", "\(hostAddress)/30", "dev", hostInterface],
            ["link", "set", hostInterface, "up"],
            ["netns", "exec", name, "ip", "addr", "add", "\(peerAddress)/30", "dev", peer],
            ["netns", "exec", name, "ip", "link", "set", peer, "up"],
            ["netns", "exec", name, "ip", "link", "set", "lo", "up"],
        ]
        for step in steps {
            do {
                try Self.ip(step)
            } catch {
                remove()
                throw error
            }
        }
    }

    /// The command that runs a program inside the namespace (it execs it, in the same process).
    var launcher: [String] { ["/usr/bin/env", "ip", "netns", "exec", name] }

    /// Cuts the link: nothing passes either way, and both ends' connections stay open, as in a real partition.
    func cut() throws { try Self.ip(["link", "set", hostInterface, "down"]) }

    /// Brings the link back.
    func heal() throws { try Self.ip(["link", "set", hostInterface, "up"]) }

    /// Delays every packet sent into the namespace by `milliseconds` (`tc netem`).
    func delay(milliseconds: Int) throws {
        let result = try CommandResult.run(
            "/usr/bin/env",
            ["tc", "qdisc", "replace", "dev", hostInterface, "root", "netem", "delay", "\(milliseconds)ms"])
        guard result.status == 0 else {
            throw ControllerProcessError(message: "tc netem on \(hostInterface): \(result)")
        }
    }

    /// Deletes the namespace and the veth pair (either end's deletion takes the other).
    func remove() {
        _ = try? CommandResult.run("/usr/bin/env", ["ip", "netns", "del", name])
        _ = try? CommandResult.run("/usr/bin/env", ["ip", "link", "del", hostInterface])
    }

    private static func ip(_ arguments: [String]) throws {
        let result = try CommandResult.run("/usr/bin/env", ["ip"] + arguments)
        guard result.status == 0 else {
            throw ControllerProcessError(message: "ip \(arguments.joined(separator: " ")): \(result)")
        }
    }
}
