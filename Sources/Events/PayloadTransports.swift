import Foundation
import Logging
import Mail
import Resources
import Routing

/// The action types whose receivers want a payload of their own rather than the rendered message as it is: Slack
/// and Teams incoming webhooks, PagerDuty's Events API v2 and email over SMTP.
extension DeliveryTransports {
    /// Slack or Teams: the message in the service's incoming-webhook payload, truncated with a note to its limits.
    func deliverChatMessage(
        _ delivery: Delivery, action: ActionSpec, table: RouteTable, timeout: Duration
    ) async throws(DeliveryFailure) {
        let isSlack = action.type == .slack
        guard let hook = isSlack ? action.slack : action.teams else {
            throw DeliveryFailure(permanent: "\(action.type.rawValue): spec.\(action.type.rawValue) is missing")
        }
        let url = try hook.urlFrom.map { source throws(DeliveryFailure) in
            try table.secretValue(source.secretKeyRef)
        } ?? hook.url ?? ""
        let headers = try (hook.headers ?? []).map { value throws(DeliveryFailure) in (value.name, try table.resolve(value)) }
        let text = String(decoding: delivery.message.body, as: UTF8.self)
        let payload =
            isSlack
            ? SlackPayload.make(title: delivery.message.title, message: text)
            : TeamsPayload.make(title: delivery.message.title, message: text)
        try await post(
            url: url, method: "POST", headers: headers, contentType: "application/json", delivery: delivery,
            body: Array(payload.jsonData()), timeout: timeout)
    }

    /// PagerDuty: a `trigger` event whose dedup key is the delivery id, so a retried delivery opens one incident.
    func deliverPagerDutyEvent(
        _ delivery: Delivery, action: ActionSpec, table: RouteTable, timeout: Duration
    ) async throws(DeliveryFailure) {
        guard let pagerduty = action.pagerduty else {
            throw DeliveryFailure(permanent: "pagerduty: spec.pagerduty is missing")
        }
        let routingKey = try table.secretValue(pagerduty.routingKeyFrom.secretKeyRef)
        let body = String(decoding: delivery.message.body, as: UTF8.self)
        let details = try? JSONValue.parse(Data(delivery.message.body))
        let payload = PagerDutyPayload.trigger(
            routingKey: routingKey, deliveryID: delivery.deliveryID,
            summary: delivery.message.title ?? String(body.prefix(1024)), severity: pagerduty.severity ?? .error,
            source: pagerduty.source ?? location, customDetails: details ?? .string(body))
        try await post(
            url: pagerduty.url ?? ActionSpec.PagerDuty.defaultURL, method: "POST", headers: [],
            contentType: "application/json", delivery: delivery, body: Array(payload.jsonData()), timeout: timeout)
    }

    /// Email over SMTP, STARTTLS as the action asks (required by default). The Message-ID is the delivery id, so
    /// a receiver can drop a retried message.
    func deliverEmail(
        _ delivery: Delivery, action: ActionSpec, table: RouteTable, timeout: Duration
    ) async throws(DeliveryFailure) {
        guard let email = action.email else { throw DeliveryFailure(permanent: "email: spec.email is missing") }
        let username = try email.usernameFrom.map { source throws(DeliveryFailure) in
            try table.secretValue(source.secretKeyRef)
        } ?? email.username
        let password = try email.passwordFrom.map { source throws(DeliveryFailure) in
            try table.secretValue(source.secretKeyRef)
        }
        let credentials = username.map { SMTPCredentials(username: $0, password: password ?? "") }
        let startTLS = SMTPConfiguration.StartTLS(rawValue: (email.startTLS ?? .required).rawValue) ?? .required
        let configuration = SMTPConfiguration(
            host: email.host, port: email.port ?? 587, startTLS: startTLS, credentials: credentials, timeout: timeout)
        let subject = Self.subject(of: delivery, email: email)
        let domain = email.from.split(separator: "@").last.map(String.init) ?? "steady"
        let message = MailMessage(
            from: email.from, to: email.to, subject: subject,
            body: String(decoding: delivery.message.body, as: UTF8.self),
            messageID: "<\(delivery.deliveryID)@\(domain)>")
        do {
            _ = try await SMTPClient(configuration: configuration, logger: Logger(label: "steady.email")).send(message)
        } catch {
            // A 5xx answer will be given again; the rest (4xx, connection, timeout) may pass.
            let isPermanent =
                (error.kind == .rejected && (error.code ?? 0) >= 500) || error.kind == .refused
                || error.kind == .unsupported
            throw isPermanent ? DeliveryFailure(permanent: "\(error)") : DeliveryFailure("\(error)")
        }
    }

    /// An email's subject: `spec.email.subject` as written, or rendered over the event when it has mustache tags
    /// (the routing step put it in the delivery's title, see ``RouteTable/message(_:for:input:)``); else the route
    /// template's title; else the route's name.
    static func subject(of delivery: Delivery, email: ActionSpec.Email) -> String {
        email.subject.flatMap { $0.contains("{{") ? nil : $0 } ?? delivery.message.title
            ?? "steady: route \(delivery.route)"
    }
}
