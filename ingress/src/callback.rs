//! Frontline's integration callbacks on the ingress, which holds no Frontline logic: the CRM,
//! outgoing-conversation and templates callbacks are asked of the resolvers over NATS
//! (`<prefix>.callback.<route>.<Location>`) and their `{"status","body"}` reply is relayed; the
//! routing callback is stored in the stream like a post-event (`<prefix>.routing.<sid>`), 200
//! only after the PubAck. No resolver, a timeout, NATS down or an unreadable reply: 503.

use std::time::Instant;

use bytes::Bytes;
use frontline_runtime::telemetry;
use frontline_shared::callback::MAX_ANSWER_BYTES;
use frontline_shared::{CallbackReply, CallbackRoute, headers};
use http::{HeaderValue, StatusCode, header};

use crate::broker::{Broker, Stored};
use crate::handler::{
    Answer, DEADLINE, GaugeGuard, MSG_ID, WebhookHandler, header_safe, message_headers,
    now_rfc3339, unix_millis,
};
use crate::metrics::{Outcome, PathKind};
use crate::response::{HttpResponse, empty};
use crate::webhook::Webhook;

/// The route label of the routing callback.
pub const ROUTING: &str = "routing";
/// The `Location` label of anything outside the known ones (and of the routing callback).
pub const OTHER: &str = "other";
/// The parameter naming what a synchronous callback asks.
const LOCATION: &str = "Location";

impl<B: Broker> WebhookHandler<B> {
    /// Asks the resolvers and relays their answer.
    pub(crate) async fn sync_callback(
        &self,
        route: CallbackRoute,
        webhook: &Webhook<'_>,
        traceparent: &str,
    ) -> Answer {
        let location = webhook.param(LOCATION).filter(|l| !l.is_empty());
        let label = location
            .and_then(|l| route.locations().iter().find(|known| **known == l).copied())
            .unwrap_or(OTHER);
        let answer = |outcome, response| Answer {
            kind: Some(PathKind::Callback),
            event: None,
            callback: Some((route.as_str(), label)),
            outcome,
            response,
        };
        let Ok(_permit) = self.in_flight.try_acquire() else {
            tracing::warn!("over MAX_IN_FLIGHT; callback refused with 503");
            return answer(Outcome::Overloaded, unavailable());
        };
        let _gauge = GaugeGuard::new(&self.metrics);
        if let Some(location) = location {
            tracing::Span::current().record("event_type", telemetry::cut(location));
        }
        let subject = self.subjects.callback(route, location);
        let type_header = location.filter(|l| header_safe(l)).unwrap_or(OTHER);
        let mut headers = message_headers(webhook, type_header, traceparent);
        let deadline = unix_millis() + self.callback_timeout.as_millis() as u64;
        headers.insert(DEADLINE, headers::deadline_value(deadline).as_str());
        let payload = Bytes::from(webhook.envelope_json_as(location.unwrap_or(""), &now_rfc3339()));
        let asked = Instant::now();
        let reply = self
            .broker
            .request(subject, headers, payload, self.callback_timeout)
            .await;
        self.metrics
            .nats_request_duration
            .observe(asked.elapsed().as_secs_f64());
        let reply = match reply {
            Ok(payload) => CallbackReply::from_slice(&payload).map_err(|err| {
                tracing::warn!(cause = %err, "unreadable resolver reply to a callback; 503");
            }),
            Err(err) => {
                tracing::warn!(cause = %err, "no resolver answer to a callback; 503");
                Err(())
            }
        };
        match reply.ok().and_then(relayed) {
            Some(response) => answer(Outcome::Answered, response),
            None => answer(Outcome::Unavailable, unavailable()),
        }
    }

    /// Stores a routing callback; 200 only after JetStream's PubAck.
    pub(crate) async fn routing_callback(
        &self,
        webhook: &Webhook<'_>,
        traceparent: &str,
    ) -> Answer {
        let answer = |outcome, response| Answer {
            kind: Some(PathKind::Callback),
            event: None,
            callback: Some((ROUTING, OTHER)),
            outcome,
            response,
        };
        let Ok(_permit) = self.in_flight.try_acquire() else {
            tracing::warn!("over MAX_IN_FLIGHT; routing callback refused with 503");
            return answer(Outcome::Overloaded, unavailable());
        };
        let _gauge = GaugeGuard::new(&self.metrics);
        let subject = self.subjects.routing(webhook.conversation_sid());
        let msg_id = webhook.dedupe_id();
        let headers = || {
            let mut headers = message_headers(webhook, ROUTING, traceparent);
            headers.insert(MSG_ID, msg_id.as_str());
            headers
        };
        let payload = Bytes::from(webhook.envelope_json_as(ROUTING, &now_rfc3339()));
        match self.store(subject, &headers, payload).await {
            Ok(Stored::New) => answer(Outcome::Published, empty(StatusCode::OK)),
            Ok(Stored::Duplicate) => answer(Outcome::Duplicate, empty(StatusCode::OK)),
            Err(err) => {
                tracing::error!(cause = %err, "routing callback not stored; answering 503");
                answer(Outcome::PublishFailed, unavailable())
            }
        }
    }
}

/// The HTTP answer a resolver's reply asks for; `None` when it cannot be given (a status
/// outside 200–599, a body over Frontline's 64 KiB).
fn relayed(reply: CallbackReply) -> Option<HttpResponse> {
    let status = StatusCode::from_u16(reply.status)
        .ok()
        .filter(|s| s.as_u16() >= 200)?;
    let body = match &reply.body {
        Some(body) => Bytes::from(serde_json::to_vec(body).ok()?),
        None => Bytes::new(),
    };
    if body.len() > MAX_ANSWER_BYTES {
        tracing::warn!(bytes = body.len(), "a callback answer over 64 KiB; 503");
        return None;
    }
    let mut response = empty(status);
    *response.body_mut() = http_body_util::Full::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Some(response)
}

fn unavailable() -> HttpResponse {
    empty(StatusCode::SERVICE_UNAVAILABLE)
}
