import Dispatch
import Foundation
import Synchronization

extension Array where Element: Sendable {
    /// `map` spread over the processor's cores in contiguous chunks, results in input order: for CPU-bound work
    /// on thousands of elements, such as validating every document of a large apply.
    public func parallelMap<Result: Sendable>(_ transform: @Sendable (Element) -> Result) -> [Result] {
        let chunkCount = Swift.min(ProcessInfo.processInfo.activeProcessorCount, count / 64)
        guard chunkCount > 1 else { return map(transform) }
        let chunks = Mutex<[[Result]?]>(.init(repeating: nil, count: chunkCount))
        let chunkSize = (count + chunkCount - 1) / chunkCount
        DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
            let range = (chunk * chunkSize)..<Swift.min(count, (chunk + 1) * chunkSize)
            let results = self[range].map(transform)
            chunks.withLock { $0[chunk] = results }
        }
        return chunks.withLock { $0.flatMap { $0 ?? [] } }
    }
}
