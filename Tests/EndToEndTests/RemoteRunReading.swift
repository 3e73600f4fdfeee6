import Foundation
import Resources
import SteadyTesting

/// Reading a RemoteRun's status as a user does, for the remote-run end-to-end suites.
protocol RemoteRunReading {}

extension RemoteRunReading {
    /// The RemoteRun's status, read with `steady get -o json`.
    func status(_ controller: ControllerProcess, _ name: String) -> JSONValue? {
        guard let result = try? controller.run("steady", ["get", "remoterun", name, "-o", "json"]), result.status == 0
        else { return nil }
        return (try? JSONValue.parse(Data(result.output.utf8)))?["status"]
    }

    /// One runner's entry in `status.results`.
    func result(_ status: JSONValue?, _ runner: String) -> JSONValue? {
        status?["results"]?.arrayValue?.first { $0["runner"]?.stringValue == runner }
    }
}
