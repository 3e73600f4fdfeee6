import Crypto
import Foundation
import Resources
import Routing

/// Applies validated manifest objects to the API with server-side apply, kind by kind in dependency order and
/// with bounded concurrency within a kind, and prunes what an ApplySet no longer declares.
///
/// Whether each object was `created`, `configured` or left `unchanged` is decided from one LIST per kind taken
/// before applying (not one GET per object): an object that was not listed is created; one that was is
/// unchanged when the apply left its resourceVersion alone.
public struct Applier: Sendable {
    /// How to apply.
    public struct Options: Sendable {
        /// `none` writes; `server` has the server compute results without storing them; `client` writes nothing.
        public var dryRun: ApplyDryRun
        /// The field manager that owns the applied fields.
        public var fieldManager: String
        /// Takes over fields other managers own instead of failing with a conflict.
        public var force: Bool
        /// The ApplySet parent (a Secret of this name) that records what this apply manages.
        public var applySet: String?
        /// Deletes objects of the ApplySet that this apply no longer declares.
        public var prune: Bool
        /// Requests in flight at once.
        public var concurrency: Int
        /// The ApplySet of a source object (a GitRepository) that records its members in its own status instead
        /// of in a parent Secret: members are labelled and pruned as with `applySet`, but only those in
        /// `ownedMembers`. Ignored when `applySet` is set.
        public var owner: ApplySet?
        /// The `Kind/name` of each object the owner applied before (its inventory): nothing else is pruned.
        public var ownedMembers: Set<String>
        /// The `Kind/name` of objects still declared but not given to ``apply(_:progress:)`` (their files did not
        /// change since they were last applied): pruning keeps them.
        public var unchangedMembers: Set<String>

        /// Creates options; the defaults write, as manager `steady`, 32 requests at a time.
        public init(
            dryRun: ApplyDryRun = .none, fieldManager: String = "steady", force: Bool = false,
            applySet: String? = nil, prune: Bool = false, concurrency: Int = 64
        ) {
            self.dryRun = dryRun
            self.fieldManager = fieldManager
            self.force = force
            self.applySet = applySet
            self.prune = prune
            self.concurrency = concurrency
            self.owner = nil
            self.ownedMembers = []
            self.unchangedMembers = []
        }
    }

    /// What happened to one object.
    public enum Outcome: String, Sendable, Equatable {
        /// It did not exist and was created.
        case created
        /// It existed and the apply changed it.
        case configured
        /// It existed and the apply changed nothing.
        case unchanged
        /// It belonged to the ApplySet, was no longer declared, and was deleted.
        case pruned
    }

    /// The result for one object: an outcome or an error.
    public struct Result: Sendable {
        /// The object's kind.
        public var info: KindInfo
        /// The object's name.
        public var name: String
        /// What happened, when it succeeded.
        public var outcome: Outcome?
        /// The object as the server returned it (or the local object, on a client dry run).
        public var object: JSONValue?
        /// Why it failed, when it did.
        public var error: (any Error)?

        /// Creates a result with neither outcome nor error yet.
        public init(info: KindInfo, name: String, outcome: Outcome? = nil, object: JSONValue? = nil, error: (any Error)? = nil) {
            self.info = info
            self.name = name
            self.outcome = outcome
            self.object = object
            self.error = error
        }

        /// `route.steady.dev/NAME`.
        public var displayName: String { "\(info.qualifiedName)/\(name)" }

        /// The store revision the server returned the object at.
        public var resourceVersion: Int64? {
            object?["metadata"]?["resourceVersion"]?.stringValue.flatMap { Int64($0) }
        }

        /// kubectl's line: `route.steady.dev/x created`, with ` (dry run)` or ` (server dry run)`.
        public func line(dryRun: ApplyDryRun) -> String? {
            guard let outcome else { return nil }
            return "\(displayName) \(outcome.rawValue)\(Applier.suffix(dryRun))"
        }
    }

    /// Every result of one apply, in the order objects were applied, then pruned objects.
    public struct Report: Sendable {
        /// The results.
        public var results: [Result]
        /// Problems that are not about one object (pruning skipped, ApplySet parent not updated).
        public var warnings: [String]

        /// The results that failed.
        public var failures: [Result] { results.filter { $0.error != nil } }
    }

    let backend: any ApplyBackend
    let options: Options

    /// Creates an applier that writes through `backend`.
    public init(backend: any ApplyBackend, options: Options = Options()) {
        self.backend = backend
        self.options = options
    }

    /// ` (dry run)` or ` (server dry run)`, as kubectl appends to its lines.
    public static func suffix(_ dryRun: ApplyDryRun) -> String {
        switch dryRun {
        case .none: ""
        case .client: " (dry run)"
        case .server: " (server dry run)"
        }
    }

    // MARK: Validation

    /// Validates every document as the server would (schema, names, expressions, templates) and rejects
    /// duplicates; returns the objects when there is no error, and every error otherwise, one per field.
    public static func validate(
        _ documents: [ManifestDocument]
    ) -> (objects: [ManifestObject], errors: [ManifestError]) {
        // Each document on its own, on every core; then duplicates, in order.
        let checked = documents.parallelMap(check)
        var objects: [ManifestObject] = []
        var errors: [ManifestError] = []
        for result in checked {
            switch result {
            case .failure(let failure): errors += failure.errors
            case .success(let object): objects.append(object)
            }
        }
        let unique = rejectingDuplicates(objects)
        errors += unique.errors
        return errors.isEmpty ? (unique.objects, []) : ([], errors)
    }

    /// The objects without the second and later declarations of one `Kind/name`, and an error naming each of
    /// those.
    public static func rejectingDuplicates(
        _ objects: [ManifestObject]
    ) -> (objects: [ManifestObject], errors: [ManifestError]) {
        var unique: [ManifestObject] = []
        var errors: [ManifestError] = []
        var seen: [String: ManifestDocument] = [:]
        for object in objects {
            let document = object.source
            let key = "\(object.info.kind)/\(object.name)"
            if let first = seen[key] {
                errors.append(
                    ManifestError(
                        file: document.file, document: document.index, line: document.line,
                        fieldPath: "metadata.name",
                        message: "duplicate object \(object.info.kind) \"\(object.name)\": already declared in "
                            + "\(first.file) document \(first.index)"))
                continue
            }
            seen[key] = document
            unique.append(object)
        }
        return (unique, errors)
    }

    /// The errors of one document.
    struct DocumentErrors: Error {
        var errors: [ManifestError]
    }

    /// Validates one document: its kind, then admission (schema, names, expressions, templates), then its name.
    @Sendable static func check(_ document: ManifestDocument) -> Swift.Result<ManifestObject, DocumentErrors> {
        func failure(_ path: String, _ message: String) -> DocumentErrors {
            DocumentErrors(errors: [
                ManifestError(
                    file: document.file, document: document.index, line: document.line,
                    fieldPath: path.isEmpty ? nil : path, message: message)
            ])
        }
        let info: KindInfo
        do {
            info = try ManifestValidation.kindInfo(of: document.value)
        } catch {
            return .failure(failure(error.path, error.message))
        }
        let value: JSONValue
        do {
            value = try Admission.admit(info, document.value)
        } catch {
            return .failure(DocumentErrors(errors: error.errors.flatMap { failure($0.path, $0.message).errors }))
        }
        let object = ManifestValidation.object(admitted: value, of: info, from: document)
        guard !object.name.isEmpty else {
            return .failure(failure("metadata.name", "required: apply needs a name (generateName is not supported)"))
        }
        return .success(object)
    }

    // MARK: Applying

    /// Applies `objects` kind by kind in ``Kinds/all`` order; calls `progress` with each kind's results in
    /// manifest order once that kind is done, then with each pruned object.
    ///
    /// Per-object failures are results, and applying goes on; what stops everything (the server cannot be
    /// reached, the ApplySet parent is not usable) is thrown.
    public func apply(
        _ objects: [ManifestObject], progress: (Result) -> Void = { _ in }
    ) async throws -> Report {
        var report = Report(results: [], warnings: [])
        var objects = objects
        let currentKinds = Set(objects.map(\.info.kind))
        var applySet: ApplySet?
        if let name = options.applySet {
            if objects.contains(where: { $0.info.kind == Secret.kind && $0.name == name }) {
                throw backend.configurationError(
                    "the manifests declare Secret \"\(name)\", which is the ApplySet parent; "
                        + "choose another --applyset name")
            }
            let set = try await ApplySet.load(name: name, backend: backend)
            if options.dryRun != .client {
                try await set.record(kinds: set.previousKinds.union(currentKinds), options: options, backend: backend)
            }
            ApplySet.markMembers(&objects, id: set.id)
            applySet = set
        } else if let owner = options.owner {
            ApplySet.markMembers(&objects, id: owner.id)
            applySet = owner
        }

        for info in Kinds.all {
            let group = objects.filter { $0.info.kind == info.kind }
            guard !group.isEmpty else { continue }
            let results = try await apply(group, of: info, setID: applySet?.id)
            for result in results { progress(result) }
            report.results += results
        }

        if let set = applySet, options.prune {
            guard report.failures.isEmpty else {
                report.warnings.append("pruning skipped because some objects failed to apply")
                return report
            }
            let keep = Set(objects.map { "\($0.info.kind)/\($0.name)" }).union(options.unchangedMembers)
            let pruned = await prune(set, keeping: keep, kinds: set.previousKinds.union(currentKinds))
            for result in pruned { progress(result) }
            report.results += pruned
            if pruned.allSatisfy({ $0.error == nil }) && options.dryRun == .none && options.applySet != nil {
                do {
                    try await set.record(kinds: currentKinds, options: options, backend: backend)
                } catch {
                    report.warnings.append("cannot update ApplySet parent Secret \"\(set.name)\": \(error)")
                }
            }
        }
        return report
    }

    /// Applies the objects of one kind, at most `options.concurrency` at a time; results in input order.
    private func apply(_ group: [ManifestObject], of info: KindInfo, setID: String?) async throws -> [Result] {
        let listed = try await backend.list(info, labelSelector: nil)
        var live: [String: JSONValue] = [:]
        for item in listed {
            if let name = item["metadata"]?["name"]?.stringValue { live[name] = item }
        }
        let listedObjects = live
        var results = [Result?](repeating: nil, count: group.count)
        await withTaskGroup(of: (Int, Result).self) { tasks in
            var next = 0
            func start() {
                let index = next
                let object = group[index]
                next += 1
                tasks.addTask { (index, await self.apply(object, live: listedObjects[object.name], setID: setID)) }
            }
            while next < group.count && next < max(1, options.concurrency) { start() }
            for await (index, result) in tasks {
                results[index] = result
                if next < group.count { start() }
            }
        }
        return results.compactMap { $0 }
    }

    private func apply(_ object: ManifestObject, live: JSONValue?, setID: String?) async -> Result {
        let body = Self.appliedConfiguration(object.value)
        var result = Result(info: object.info, name: object.name)
        // An object of another set is that set's: taking it over would make two sources flip it back and forth.
        if let setID, let other = live?["metadata"]?["labels"]?[ApplySet.partOfLabel]?.stringValue, other != setID {
            result.error = OwnershipConflict(kind: object.info.kind, name: object.name, owner: other)
            return result
        }
        if options.dryRun == .client {
            result.outcome = Self.classifyLocally(desired: body, live: live)
            result.object = object.info.kind == Secret.kind ? Self.redacted(body) : body
            return result
        }
        // What the list shows already applied needs no request. Secret values are redacted in lists, so a
        // Secret is always sent.
        if options.dryRun == .none, object.info.kind != Secret.kind, let live,
            FieldSet.applyChangesNothing(body, live: live, manager: options.fieldManager)
        {
            result.object = live
            result.outcome = .unchanged
            return result
        }
        do {
            let response = try await backend.apply(
                object.info, body, fieldManager: options.fieldManager, force: options.force,
                dryRun: options.dryRun == .server)
            result.object = response.object
            result.outcome = Self.classify(
                live: live, returned: response.object, created: response.created, dryRun: options.dryRun)
        } catch {
            result.error = error
        }
        return result
    }

    // MARK: Classification

    /// created, configured or unchanged, from the object as listed before the apply and as the apply returned it.
    ///
    /// The server's 201 says it created the object. Otherwise a write that changed nothing keeps the listed
    /// resourceVersion; a server dry run keeps it either way, so there the objects are compared instead.
    public static func classify(
        live: JSONValue?, returned: JSONValue, created: Bool, dryRun: ApplyDryRun
    ) -> Outcome {
        guard let live, !created else { return .created }
        switch dryRun {
        case .server:
            return withoutResourceVersion(live) == withoutResourceVersion(returned) ? .unchanged : .configured
        case .none, .client:
            let before = live["metadata"]?["resourceVersion"]?.stringValue
            let after = returned["metadata"]?["resourceVersion"]?.stringValue
            return before != nil && before == after ? .unchanged : .configured
        }
    }

    /// For a client dry run: created when not listed, unchanged when every field the manifest sets already has
    /// that value live (Secret values are compared only by key: the server does not reveal them).
    public static func classifyLocally(desired: JSONValue, live: JSONValue?) -> Outcome {
        guard let live else { return .created }
        return isContained(desired, in: live) ? .unchanged : .configured
    }

    private static func isContained(_ desired: JSONValue, in live: JSONValue) -> Bool {
        switch (desired, live) {
        case (.object(let wanted), .object(let have)):
            return wanted.allSatisfy { key, value in have[key].map { isContained(value, in: $0) } ?? false }
        case (_, .string(Secret.redactedValue)):
            return true
        case (.int, .double), (.double, .int):
            return desired.doubleValue == live.doubleValue
        default:
            return desired == live
        }
    }

    private static func withoutResourceVersion(_ object: JSONValue) -> JSONValue {
        var copy = object
        copy["metadata"]?["resourceVersion"] = nil
        return copy
    }

    /// What is sent: the validated object without status and without what the server sets.
    public static func appliedConfiguration(_ value: JSONValue) -> JSONValue {
        var body = value
        body["status"] = nil
        for key in ["uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "managedFields"] {
            body["metadata"]?[key] = nil
        }
        return body
    }

    public static func redacted(_ secret: JSONValue) -> JSONValue {
        var copy = secret
        if let data = secret["data"]?.objectValue {
            copy["data"] = .object(data.mapValues { _ in .string(Secret.redactedValue) })
        }
        copy["stringData"] = nil
        return copy
    }

    // MARK: Pruning

    /// Deletes objects of the given kinds that carry the ApplySet's part-of label and are not in `keep`,
    /// dependents first (reverse ``Kinds/all`` order).
    private func prune(_ set: ApplySet, keeping keep: Set<String>, kinds: Set<String>) async -> [Result] {
        var results: [Result] = []
        for info in Kinds.all.reversed() where kinds.contains(info.kind) {
            let listed: [JSONValue]
            do {
                listed = try await backend.list(info, labelSelector: "\(ApplySet.partOfLabel)=\(set.id)")
            } catch {
                var result = Result(info: info, name: "*")
                result.error = error
                results.append(result)
                continue
            }
            for item in listed {
                guard let name = item["metadata"]?["name"]?.stringValue,
                    // Double-check the label: pruning must never reach beyond the set.
                    item["metadata"]?["labels"]?[ApplySet.partOfLabel]?.stringValue == set.id,
                    !keep.contains("\(info.kind)/\(name)"),
                    options.applySet != nil || options.ownedMembers.contains("\(info.kind)/\(name)")
                else { continue }
                var result = Result(info: info, name: name)
                if options.dryRun == .client {
                    result.outcome = .pruned
                    result.object = item
                } else {
                    do {
                        // nil: deleted by someone else meanwhile, which is what pruning wanted.
                        guard let deleted = try await backend.delete(info, name: name, dryRun: options.dryRun == .server)
                        else { continue }
                        result.object = deleted
                        result.outcome = .pruned
                    } catch {
                        result.error = error
                    }
                }
                results.append(result)
            }
        }
        return results
    }
}

/// An object that belongs to another ApplySet (another source) than the one applying it.
public struct OwnershipConflict: Error, Sendable, CustomStringConvertible {
    /// The object's kind.
    public var kind: String
    /// The object's name.
    public var name: String
    /// The id of the ApplySet that owns it (its `applyset.kubernetes.io/part-of` label).
    public var owner: String

    /// What to do about it.
    public var description: String {
        "\(kind)/\(name) is managed by another source (\(ApplySet.partOfLabel)=\(owner)); remove it from one of "
            + "the two sources"
    }
}
