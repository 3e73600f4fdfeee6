import Foundation
import SteadyTesting

/// A network namespace joined to this one by a veth pair (iproute2), for a test that cuts or slows one agent's link
/// to the controller while the others keep theirs; `remove()` deletes both, and with them what slows the link.
struct NetworkNamespace {
    /// The namespace's name.
    let name: String
    /// The veth end in this namespace, where the controller is reached.
    let hostInterface: String
    /// The veth end inside the namespace, where the agent's packets leave and arrive.
    let namespaceInterface: String
    /// The address of ``hostInterface``, which processes in the namespace connect to.
    let hostAddress: String

    /// How a link is slowed on this machine.
    enum LinkShaping {
        /// A token bucket (`tc tbf`) limits the rate under `tc netem`, which drops packets at random.
        case netem
        /// A token bucket limits the rate and an nftables rule (`numgen random`) drops packets at random: for
        /// kernels without sch_netem.
        case tokenBucketAndNftables
    }

    /// Whether this process may create network namespaces: root, with `ip` installed, in a kernel and a sandbox
    /// that allow it (tried for real).
    static let isAvailable: Bool = {
        guard geteuid() == 0, let namespace = try? NetworkNamespace() else { return false }
        namespace.remove()
        return true
    }()

    /// How this machine can slow a link, found by slowing one for real: with netem where the kernel has sch_netem,
    /// else with `tc tbf` and `nft`; nil when neither works.
    static let linkShaping: LinkShaping? = {
        guard isAvailable, let probe = try? NetworkNamespace() else { return nil }
        defer { probe.remove() }
        return [LinkShaping.netem, .tokenBucketAndNftables].first { shaping in
            (try? probe.slow(bitsPerSecond: 1_000_000, lossPercent: 1, with: shaping)) != nil
        }
    }()

    /// Creates the namespace and the veth pair, with a /30 of 10.213.0.0/16 between them; nothing is left behind
    /// when a step fails.
    init() throws {
        let id = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        name = "steady-\(id)"
        hostInterface = "sth\(id)"
        namespaceInterface = "stn\(id)"
        let base = "10.213.\(Int.random(in: 0...255)).\(Int.random(in: 0...63) * 4)"
        let prefix = base.split(separator: ".").dropLast().joined(separator: ".")
        let last = Int(base.split(separator: ".").last ?? "") ?? 0
        hostAddress = "\(prefix).\(last + 1)"
        let peerAddress = "\(prefix).\(last + 2)"
        let steps = [
            ["netns", "add", name],
            ["link", "add", hostInterface, "type", "veth", "peer", "name", namespaceInterface],
            ["link", "set", namespaceInterface, "netns", name],
            ["addr", "add", "\(hostAddress)/30", "dev", hostInterface],
            ["link", "set", hostInterface, "up"],
            ["netns", "exec", name, "ip", "addr", "add", "\(peerAddress)/30", "dev", namespaceInterface],
            ["netns", "exec", name, "ip", "link", "set", namespaceInterface, "up"],
            ["netns", "exec", name, "ip", "link", "set", "lo", "up"],
        ]
        for step in steps {
            do {
                try Self.run(["ip"] + step)
            } catch {
                remove()
                throw error
            }
        }
    }

    /// The command that runs a program inside the namespace (it execs it, in the same process).
    var launcher: [String] { ["/usr/bin/env", "ip", "netns", "exec", name] }

    /// Cuts the link: nothing passes either way, and both ends' connections stay open, as in a real partition.
    func cut() throws { try Self.run(["ip", "link", "set", hostInterface, "down"]) }

    /// Brings the link back.
    func heal() throws { try Self.run(["ip", "link", "set", hostInterface, "up"]) }

    /// Slows the link both ways, as ``linkShaping`` can: at most `bitsPerSecond`, behind a queue of two seconds, and
    /// `lossPercent` of the packets dropped at random. The veth pair and the namespace take it all away with them.
    func slow(bitsPerSecond: Int, lossPercent: Int) throws {
        guard let shaping = Self.linkShaping else {
            throw ControllerProcessError(message: "cannot slow a link here: needs tc netem, or tc tbf and nft")
        }
        try slow(bitsPerSecond: bitsPerSecond, lossPercent: lossPercent, with: shaping)
    }

    private func slow(bitsPerSecond: Int, lossPercent: Int, with shaping: LinkShaping) throws {
        // A short queue keeps the round trip, and so TCP's retransmission timeout, within a few seconds: a lost
        // heartbeat is sent again well before the controller's heartbeat timeout.
        let tokenBucket = ["tbf", "rate", "\(bitsPerSecond)bit", "burst", "1600", "latency", "2s"]
        // Each end shapes what it sends: the host end the way into the namespace, the other end the way out.
        let ends = [(hostInterface, [String]()), (namespaceInterface, ["ip", "netns", "exec", name])]
        for (interface, inside) in ends {
            let qdisc = inside + ["tc", "qdisc", "replace", "dev", interface]
            switch shaping {
            case .netem:
                try Self.run(qdisc + ["root", "handle", "1:", "netem", "loss", "random", "\(lossPercent)%"])
                try Self.run(qdisc + ["parent", "1:1", "handle", "10:"] + tokenBucket)
            case .tokenBucketAndNftables:
                try Self.run(qdisc + ["root"] + tokenBucket)
            }
        }
        guard shaping == .tokenBucketAndNftables else { return }
        // In the namespace, on its veth end only: packets on their way in (input) and out (output).
        let drop = "numgen random mod 100 < \(lossPercent) drop"
        let hook = "type filter hook"
        let rules = """
            table inet steady_slow_link {
                chain incoming { \(hook) input priority 0; policy accept; iifname "\(namespaceInterface)" \(drop); }
                chain outgoing { \(hook) output priority 0; policy accept; oifname "\(namespaceInterface)" \(drop); }
            }
            """
        try Self.run(["ip", "netns", "exec", name, "nft", "-f", "-"], input: rules)
    }

    /// Deletes the namespace and the veth pair (either end's deletion takes the other).
    func remove() {
        _ = try? CommandResult.run("/usr/bin/env", ["ip", "netns", "del", name])
        _ = try? CommandResult.run("/usr/bin/env", ["ip", "link", "del", hostInterface])
    }

    private static func run(_ arguments: [String], input: String? = nil) throws {
        let result = try CommandResult.run("/usr/bin/env", arguments, input: input)
        guard result.status == 0 else {
            throw ControllerProcessError(message: "\(arguments.joined(separator: " ")): \(result)")
        }
    }
}
