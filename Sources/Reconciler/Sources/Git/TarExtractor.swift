import Foundation

/// Extracts what `git archive --format=tar` writes: ustar entries with pax headers for long names. Regular files
/// and directories only (a symbolic link could point out of the tree, and manifests need none); no path may
/// leave the destination.
enum TarExtractor {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func extract(archive: URL, into destination: URL) throws {
        let data = try Data(contentsOf: archive)
        let fileManager = FileManager.default
        var offset = 0
        var longName: String?
        while offset + 512 <= data.count {
            let header = data[data.startIndex + offset..<data.startIndex + offset + 512]
            if header.allSatisfy({ $0 == 0 }) { break }
            func field(_ start: Int, _ length: Int) -> String {
                let bytes = header[header.startIndex + start..<header.startIndex + start + length].prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            let sizeText = field(124, 12).trimmingCharacters(in: .whitespaces)
            guard let size = Int(sizeText.isEmpty ? "0" : sizeText, radix: 8), size >= 0 else {
                throw Failure(description: "malformed tar header at byte \(offset)")
            }
            let type = header[header.startIndex + 156]
            let prefix = field(345, 155)
            var name = prefix.isEmpty ? field(0, 100) : prefix + "/" + field(0, 100)
            let bodyStart = data.startIndex + offset + 512
            guard bodyStart + size <= data.endIndex else { throw Failure(description: "truncated tar archive") }
            let body = data[bodyStart..<bodyStart + size]
            offset += 512 + (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "x"):
                longName = paxPath(body)
                continue
            case UInt8(ascii: "g"):
                continue
            default:
                break
            }
            if let longName { name = longName }
            longName = nil
            let components = name.split(separator: "/")
            guard !name.hasPrefix("/"), !components.contains(".."), !components.isEmpty else {
                throw Failure(description: "tar entry \"\(name)\" would leave the tree")
            }
            let target = destination.appendingPathComponent(components.joined(separator: "/"))
            switch type {
            case UInt8(ascii: "5"):
                try fileManager.createDirectory(at: target, withIntermediateDirectories: true)
            case UInt8(ascii: "0"), 0:
                try fileManager.createDirectory(
                    at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                guard fileManager.createFile(atPath: target.path, contents: Data(body)) else {
                    throw Failure(description: "cannot write \(target.path)")
                }
            default:
                continue
            }
        }
    }

    /// The `path` record of a pax extended header (`LEN path=VALUE\n` records).
    private static func paxPath(_ body: Data) -> String? {
        for record in String(decoding: body, as: UTF8.self).split(separator: "\n") {
            guard let space = record.firstIndex(of: " ") else { continue }
            let pair = record[record.index(after: space)...]
            if pair.hasPrefix("path=") { return String(pair.dropFirst(5)) }
        }
        return nil
    }
}
