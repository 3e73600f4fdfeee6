import Mustache
import Resources
import Synchronization

/// Compiled route expressions and templates, shared by everything on the controller that needs them, so that an
/// object is compiled once and not again by each step of a write (admission, the merge, the reconcilers, a
/// manifest directory's own check).
///
/// Entries are keyed by their source text, not by object name and generation: compiling is a function of the text
/// alone, so an entry can never be stale — not after a delete and re-create restarts the generation, nor after a
/// dry run admitted text that was never stored. Only successful compilations are kept; a failure is compiled again
/// so its error names the field it came from.
///
/// The cache is bounded by entries and by source bytes. It keeps two generations: lookups promote entries from
/// the older one, and when the newer one fills it becomes the older one and the oldest entries are dropped, so
/// what is in use stays and the rest ages out without a per-entry clock.
public final class CompiledCache: Sendable {
    /// How many compilations ran and how many lookups were answered from the cache.
    public struct Statistics: Sendable, Equatable {
        /// Lookups that found nothing, so compiled the source.
        public var compilations: Int
        /// Lookups answered from the cache.
        public var hits: Int

        /// Creates statistics with the given counts.
        public init(compilations: Int = 0, hits: Int = 0) {
            self.compilations = compilations
            self.hits = hits
        }
    }

    private enum Key: Hashable {
        case expression(String)
        case template(String)

        var size: Int {
            switch self {
            case .expression(let source), .template(let source): source.utf8.count
            }
        }
    }

    private enum Entry {
        case expression(Expression)
        case template(MustacheTemplate)
    }

    private struct State {
        var newer: [Key: Entry] = [:]
        var older: [Key: Entry] = [:]
        var newerBytes = 0
        var statistics = Statistics()
    }

    /// Most entries kept in each of the two generations.
    public let entriesPerGeneration: Int
    /// Most source bytes kept in each of the two generations.
    public let bytesPerGeneration: Int
    private let state = Mutex(State())

    /// Creates an empty cache holding at most twice the given entries and bytes.
    public init(entriesPerGeneration: Int = 2048, bytesPerGeneration: Int = 8 << 20) {
        self.entriesPerGeneration = max(1, entriesPerGeneration)
        self.bytesPerGeneration = bytesPerGeneration
    }

    /// What the cache has done so far.
    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// The compiled form of a route expression, compiled now only if it is not cached.
    public func expression(_ source: String) throws(ExpressionError) -> Expression {
        if case .expression(let expression)? = lookUp(.expression(source)) { return expression }
        let expression = try Expression(source)
        store(.expression(expression), at: .expression(source))
        return expression
    }

    /// The compiled form of a template field (see ``TemplateCompiler/compile(_:field:limits:)``), compiled now only
    /// if it is not cached.
    public func template(_ source: String, field: String) throws(FieldError) -> MustacheTemplate {
        if case .template(let template)? = lookUp(.template(source)) { return template }
        let template = try TemplateCompiler.compile(source, field: field)
        store(.template(template), at: .template(source))
        return template
    }

    private func lookUp(_ key: Key) -> Entry? {
        state.withLock { state in
            if let entry = state.newer[key] {
                state.statistics.hits += 1
                return entry
            }
            guard let entry = state.older.removeValue(forKey: key) else {
                state.statistics.compilations += 1
                return nil
            }
            state.statistics.hits += 1
            insert(entry, at: key, into: &state)
            return entry
        }
    }

    private func store(_ entry: Entry, at key: Key) {
        state.withLock { state in
            guard state.newer[key] == nil else { return }
            insert(entry, at: key, into: &state)
        }
    }

    private func insert(_ entry: Entry, at key: Key, into state: inout State) {
        let size = key.size
        // A source larger than a whole generation is not kept: it would evict everything else.
        guard size <= bytesPerGeneration else { return }
        if state.newer.count >= entriesPerGeneration || state.newerBytes + size > bytesPerGeneration {
            state.older = state.newer
            state.newer = [:]
            state.newerBytes = 0
        }
        state.newer[key] = entry
        state.newerBytes += size
    }
}
