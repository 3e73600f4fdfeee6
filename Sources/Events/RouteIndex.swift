import Resources
import Routing

/// Which routes of a table an event can match, so that an event is evaluated against those only, not against every
/// route: with 100 routes each testing `input.source == "…"`, one hash lookup leaves one route to evaluate.
///
/// A route whose expression requires `input.PATH` to be one of some strings (``Expression/requiredInputString``)
/// is filed under that path and those strings; any other route is a candidate for every event. Candidates are
/// still evaluated in full: the index only leaves out routes that cannot match.
struct RouteIndex: Sendable {
    /// Route positions by required string, per path.
    private var byPath: [[String]: [String: [Int]]] = [:]
    /// Positions of routes with no required string.
    private var unindexed: [Int] = []

    init(_ expressions: [Expression]) {
        for (position, expression) in expressions.enumerated() {
            guard let required = expression.requiredInputString else {
                unindexed.append(position)
                continue
            }
            for value in required.values { byPath[required.path, default: [:]][value, default: []].append(position) }
        }
    }

    /// Positions of the routes `event` may match, ascending.
    func candidates(for event: JSONValue) -> [Int] {
        var positions = unindexed
        for (path, routes) in byPath {
            guard case .string(let value)? = event[path: path], let matching = routes[value] else { continue }
            positions += matching
        }
        // Ascending keeps the table's order; a route listed under two strings of one path appears once.
        return byPath.count <= 1 && unindexed.isEmpty ? positions : Array(Set(positions)).sorted()
    }
}
