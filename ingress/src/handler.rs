//! Routing and the answer to each webhook: one `match` on method and path, then verify,
//! classify, and either ask the resolvers (pre) or store (post). Every request is counted once
//! with its outcome and timed by path. Frontline's callbacks take the same way in, then
//! [`crate::callback`]'s paths.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::{HeaderMap, HeaderName};
use bytes::Bytes;
use frontline_shared::subject::Subjects;
use frontline_shared::{CallbackRoute, EventKind, EventType, PreReply, headers};
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::Semaphore;
use tracing::{Instrument, Span};

use crate::broker::{Broker, Headers, PublishError, Stored};
use crate::cache::CachedAnswer;
use crate::config::Fallback;
use crate::error::Rejection;
use crate::metrics::{IngressMetrics, Outcome, PathKind};
use crate::response::{HttpResponse, empty, json};
use crate::webhook::{BodyKind, RawRequest, Webhook, WebhookReader};
use frontline_runtime::server::ReadDeadline;
use frontline_runtime::telemetry;

/// The one webhook route.
pub const WEBHOOK_PATH: &str = "/webhooks/conversations";

/// What a request's path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The Conversations webhook.
    Webhook,
    /// A synchronous Frontline callback (`/callbacks/crm`, ...).
    Callback(CallbackRoute),
    /// Frontline's routing callback (`/callbacks/routing`), stored.
    Routing,
}

/// The path of the routing callback.
const ROUTING_PATH: &str = "/callbacks/routing";

impl Route {
    /// The route of `path`, if any.
    pub fn of(path: &str) -> Option<Route> {
        if path == WEBHOOK_PATH {
            return Some(Route::Webhook);
        }
        if path == ROUTING_PATH {
            return Some(Route::Routing);
        }
        path.strip_prefix("/callbacks/")
            .and_then(CallbackRoute::parse)
            .map(Route::Callback)
    }
}

/// The webhook handler: what every request needs, built once at start and shared.
#[derive(Debug)]
pub struct WebhookHandler<B> {
    /// The broker seam.
    pub broker: B,
    /// Parameters and signature checks.
    pub reader: WebhookReader,
    /// Subject builder for this deployment.
    pub subjects: Subjects,
    /// Metrics.
    pub metrics: IngressMetrics,
    /// `MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `PRE_EVENT_TIMEOUT_MS`.
    pub pre_event_timeout: Duration,
    /// `PRE_EVENT_FALLBACK`.
    pub fallback: Fallback,
    /// `MAX_IN_FLIGHT` permits.
    pub in_flight: Arc<Semaphore>,
    /// `CALLBACK_TIMEOUT_MS`.
    pub callback_timeout: Duration,
    /// The local spool (`SPOOL_DIR`), when configured.
    pub spool: Option<crate::spool::Spool>,
}

impl<B: Broker> WebhookHandler<B> {
    /// Answers one HTTP request on the public listener.
    pub async fn handle<T>(self: Arc<Self>, request: Request<T>) -> HttpResponse
    where
        T: hyper::body::Body<Data = Bytes> + Send,
        T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let span = tracing::info_span!(
            target: telemetry::REQUEST_SPANS,
            "webhook",
            event_type = tracing::field::Empty,
            conversation_sid = tracing::field::Empty,
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        let started = Instant::now();
        // The span is entered only once the request is verified (see `webhook`), so that the
        // trace it continues can still be set; the rest runs inside it.
        let route = Route::of(request.uri().path());
        let answer = match self.webhook(request, route, &span).await {
            Ok(answer) => answer,
            Err(rejection) => {
                if let Rejection::Signature(err) = &rejection {
                    self.metrics.signature_failure(err.reason());
                }
                span.in_scope(|| Answer::rejected(rejection, route))
            }
        };
        let Answer {
            kind,
            event,
            callback,
            outcome,
            response,
        } = answer;
        let elapsed = started.elapsed();
        match callback {
            Some((route, location)) => self.metrics.count_callback(route, location, outcome),
            None => self.metrics.count(event, outcome),
        }
        if let Some(kind) = kind {
            self.metrics.observe(kind, elapsed.as_secs_f64());
        }
        span.record("outcome", outcome.as_str());
        span.record("duration_ms", elapsed.as_secs_f64() * 1e3);
        span.in_scope(|| {
            tracing::debug!(status = response.status().as_u16(), "webhook answered");
        });
        response
    }

    /// Route, read, verify, classify, dispatch (inside `span`).
    async fn webhook<T>(
        &self,
        request: Request<T>,
        route: Option<Route>,
        span: &Span,
    ) -> Result<Answer, Rejection>
    where
        T: hyper::body::Body<Data = Bytes> + Send,
        T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let body_kind = match (&parts.method, route) {
            (_, None) => return Err(Rejection::NotFound),
            (&Method::POST, Some(Route::Webhook)) => {
                Some(BodyKind::from_content_type(content_type)?)
            }
            (&Method::GET, Some(Route::Webhook)) => None,
            (_, Some(Route::Webhook)) => {
                return Err(Rejection::MethodNotAllowed { allow: "GET, POST" });
            }
            // Frontline's callbacks are form POSTs only.
            (&Method::POST, Some(_)) => match BodyKind::from_content_type(content_type)? {
                BodyKind::Form => Some(BodyKind::Form),
                BodyKind::Json => {
                    return Err(Rejection::UnsupportedMediaType("application/json".into()));
                }
            },
            (_, Some(_)) => return Err(Rejection::MethodNotAllowed { allow: "POST" }),
        };
        let read = read_body(body, self.max_body_bytes);
        let body = match parts.extensions.get::<ReadDeadline>() {
            Some(ReadDeadline(deadline)) => tokio::time::timeout_at(*deadline, read)
                .await
                .map_err(|_| Rejection::RequestTimeout)??,
            None => read.await?,
        };
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let raw = RawRequest {
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or(WEBHOOK_PATH, |pq| pq.as_str()),
            body_kind,
            body: &body,
            signature: header(headers::HTTP_SIGNATURE),
            signature_settings: header(headers::HTTP_SIGNATURE_SETTINGS),
            idempotency_token: header(headers::HTTP_IDEMPOTENCY_TOKEN),
        };
        let webhook = self.reader.read(raw)?;
        // Only a verified request's trace context is continued: an unsigned client must not
        // decide which trace its span joins, or whether it is sampled for export.
        let traceparent = telemetry::continue_trace(span, header(headers::TRACEPARENT));
        // Inside the span when it is enabled; at the default level it is not, and awaiting
        // without the wrapper saves a copy of the (kilobytes large) future.
        macro_rules! in_span {
            ($future:expr) => {
                if span.is_disabled() {
                    $future.await
                } else {
                    $future.instrument(span.clone()).await
                }
            };
        }
        match route {
            Some(Route::Callback(route)) => {
                return Ok(in_span!(self.sync_callback(route, &webhook, &traceparent)));
            }
            Some(Route::Routing) => {
                return Ok(in_span!(self.routing_callback(&webhook, &traceparent)));
            }
            Some(Route::Webhook) | None => {}
        }
        let name = webhook
            .event_type()
            .ok_or(Rejection::BadRequest("missing EventType"))?;
        let event = EventType::parse(name);
        span.record("event_type", telemetry::cut(name));
        if let Some(sid) = webhook.conversation_sid() {
            span.record("conversation_sid", telemetry::cut(sid));
        }
        Ok(match event {
            Some(event) if event.kind() == EventKind::Pre => {
                in_span!(self.pre_event(event, webhook, traceparent))
            }
            _ => in_span!(self.post_event(event, webhook, traceparent)),
        })
    }

    /// Asks a resolver and turns its reply into Twilio's answer.
    async fn pre_event(
        &self,
        event: EventType,
        webhook: Webhook<'_>,
        traceparent: String,
    ) -> Answer {
        let answer = |outcome, response| Answer::new(PathKind::Pre, Some(event), outcome, response);
        let Ok(_permit) = self.in_flight.try_acquire() else {
            tracing::warn!("over MAX_IN_FLIGHT; pre-event takes the fallback");
            return answer(Outcome::Overloaded, self.fallback_response());
        };
        let _gauge = GaugeGuard::new(&self.metrics);
        // Twilio retrying (a request with an idempotency token) gets the answer already given, by
        // whichever ingress replica gave it, without asking the resolvers again. A first attempt
        // (`RetryCount=0`) has nothing to find, so only retries pay for the lookup.
        // The key is the digest of what Twilio signed, never the unsigned token itself.
        let cache_key = webhook.idempotency_token().map(|_| webhook.dedupe_id());
        let first_attempt = webhook.param("RetryCount") == Some("0");
        if let Some(key) = cache_key.as_ref().filter(|_| !first_attempt) {
            let cached = self
                .broker
                .cached_answer(key)
                .await
                .and_then(|bytes| CachedAnswer::decode(&bytes));
            self.metrics.cache_lookup(cached.is_some());
            if let Some(cached) = cached {
                return answer(
                    cached_outcome(&cached),
                    pre_response(cached.status, cached.body),
                );
            }
        }
        let decided = self
            .ask_resolvers(event, &webhook, &traceparent)
            .await
            .and_then(decision);
        let Some((outcome, decided)) = decided else {
            return answer(Outcome::Fallback, self.fallback_response());
        };
        // Only a resolver's decision is cached: a fallback must not stick to the retries.
        if let Some(key) = cache_key {
            self.broker.cache_answer(key, decided.encode()).await;
        }
        answer(outcome, pre_response(decided.status, decided.body))
    }

    /// The resolvers' reply to a pre-event; `None` when there is no usable one.
    async fn ask_resolvers(
        &self,
        event: EventType,
        webhook: &Webhook<'_>,
        traceparent: &str,
    ) -> Option<PreReply> {
        let subject = self.subjects.pre(event, webhook.conversation_sid());
        let deadline = unix_millis() + self.pre_event_timeout.as_millis() as u64;
        let mut headers = message_headers(webhook, event.as_str(), traceparent);
        headers.insert(DEADLINE, headers::deadline_value(deadline).as_str());
        let payload = Bytes::from(webhook.envelope_json(&now_rfc3339()));
        let asked = Instant::now();
        let reply = self
            .broker
            .request(subject, headers, payload, self.pre_event_timeout)
            .await;
        self.metrics
            .nats_request_duration
            .observe(asked.elapsed().as_secs_f64());
        match reply {
            Ok(payload) => PreReply::from_slice(&payload)
                .map_err(|err| {
                    tracing::warn!(cause = %err, "unreadable resolver reply; taking the fallback");
                })
                .ok(),
            Err(err) => {
                tracing::warn!(cause = %err, "no resolver answer; taking the fallback");
                None
            }
        }
    }

    /// Stores the event; 200 only after JetStream's PubAck.
    async fn post_event(
        &self,
        event: Option<EventType>,
        webhook: Webhook<'_>,
        traceparent: String,
    ) -> Answer {
        let answer = |outcome, response| Answer::new(PathKind::Post, event, outcome, response);
        let Ok(_permit) = self.in_flight.try_acquire() else {
            tracing::warn!("over MAX_IN_FLIGHT; post-event refused with 503");
            let mut response = empty(StatusCode::SERVICE_UNAVAILABLE);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return answer(Outcome::Overloaded, response);
        };
        let _gauge = GaugeGuard::new(&self.metrics);
        let subject = self.subjects.post(event, webhook.conversation_sid());
        // An unknown type keeps its name in the header when it can stand there; the subject
        // never trusts it.
        let type_header = match (event, webhook.event_type()) {
            (Some(event), _) => event.as_str(),
            (None, Some(raw)) if header_safe(raw) => raw,
            (None, _) => frontline_shared::subject::UNKNOWN,
        };
        let msg_id = webhook.dedupe_id();
        let headers = || {
            let mut headers = message_headers(&webhook, type_header, &traceparent);
            headers.insert(MSG_ID, msg_id.as_str());
            headers
        };
        let payload = Bytes::from(webhook.envelope_json(&now_rfc3339()));
        match self.store(subject, &headers, payload).await {
            Ok(Stored::New) => answer(Outcome::Published, empty(StatusCode::OK)),
            Ok(Stored::Duplicate) => answer(Outcome::Duplicate, empty(StatusCode::OK)),
            Err(err) => {
                let level_error = !matches!(err, PublishError::Disconnected);
                if level_error {
                    tracing::error!(cause = %err, "post-event not stored; answering 503");
                } else {
                    tracing::warn!(cause = %err, "post-event not stored; answering 503");
                }
                answer(
                    Outcome::PublishFailed,
                    empty(StatusCode::SERVICE_UNAVAILABLE),
                )
            }
        }
    }

    /// Stores an event in JetStream within `PUBLISH_BUDGET_MS`; when that fails in a way that
    /// can pass and a spool is configured, appends it to the spool instead (a 200 all the same).
    pub(crate) async fn store(
        &self,
        subject: String,
        headers: Headers<'_>,
        payload: Bytes,
    ) -> Result<Stored, PublishError> {
        let Some(spool) = &self.spool else {
            return self.broker.publish(subject, headers, payload).await;
        };
        let (spooled_subject, spooled_payload) = (subject.clone(), payload.clone());
        match self.broker.publish(subject, headers, payload).await {
            Err(err) if err.can_pass() => {
                match spool
                    .append(&spooled_subject, &headers(), &spooled_payload)
                    .await
                {
                    Ok(()) => {
                        tracing::warn!(cause = %err, "NATS unavailable past the budget; event spooled");
                        self.metrics.spooled.inc();
                        Ok(Stored::New)
                    }
                    Err(spool_err) => {
                        tracing::error!(cause = %spool_err, "the event could not be spooled either");
                        Err(err)
                    }
                }
            }
            outcome => outcome,
        }
    }

    fn fallback_response(&self) -> HttpResponse {
        match self.fallback {
            Fallback::Accept => json(&b"{}"[..]),
            Fallback::Reject => empty(StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

/// What a resolver's reply tells Twilio, and how it is counted; `None` for an error reply,
/// which takes the fallback.
fn decision(reply: PreReply) -> Option<(Outcome, CachedAnswer)> {
    let (outcome, status, body) = match reply {
        PreReply::Accept => (Outcome::Accepted, StatusCode::OK, Bytes::from_static(b"{}")),
        PreReply::Modify { fields } if fields.is_empty() => {
            (Outcome::Accepted, StatusCode::OK, Bytes::from_static(b"{}"))
        }
        PreReply::Modify { fields } => (
            Outcome::Modified,
            StatusCode::OK,
            Bytes::from(fields.to_twilio_body()),
        ),
        PreReply::Reject { reason } => {
            tracing::info!(reason = %telemetry::cut(&reason), "resolver rejected the action");
            (Outcome::Rejected, StatusCode::FORBIDDEN, Bytes::new())
        }
        PreReply::Error { message } => {
            tracing::warn!(cause = %telemetry::cut(&message), "resolver failed; taking the fallback");
            return None;
        }
    };
    Some((outcome, CachedAnswer { status, body }))
}

/// The outcome a cached answer counts as.
fn cached_outcome(cached: &CachedAnswer) -> Outcome {
    match (cached.status, cached.body.as_ref()) {
        (StatusCode::OK, b"{}") => Outcome::Accepted,
        (StatusCode::OK, _) => Outcome::Modified,
        _ => Outcome::Rejected,
    }
}

/// A pre-event answer: JSON for 200, empty otherwise.
fn pre_response(status: StatusCode, body: Bytes) -> HttpResponse {
    if status == StatusCode::OK {
        json(body)
    } else {
        empty(status)
    }
}

/// How a request ended: the path it took (none when refused before), its event (when known),
/// the callback's route and `Location` labels (callbacks only), the outcome it is counted as,
/// and the HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) kind: Option<PathKind>,
    pub(crate) event: Option<EventType>,
    pub(crate) callback: Option<(&'static str, &'static str)>,
    pub(crate) outcome: Outcome,
    pub(crate) response: HttpResponse,
}

impl Answer {
    fn new(
        kind: PathKind,
        event: Option<EventType>,
        outcome: Outcome,
        response: HttpResponse,
    ) -> Answer {
        Answer {
            kind: Some(kind),
            event,
            callback: None,
            outcome,
            response,
        }
    }

    /// A request refused before it was classified.
    fn rejected(rejection: Rejection, route: Option<Route>) -> Answer {
        let outcome = match rejection {
            Rejection::Signature(_) => Outcome::BadSignature,
            _ => Outcome::BadRequest,
        };
        let callback = match route {
            Some(Route::Callback(route)) => Some((route.as_str(), crate::callback::OTHER)),
            Some(Route::Routing) => Some((crate::callback::ROUTING, crate::callback::OTHER)),
            _ => None,
        };
        Answer {
            kind: None,
            event: None,
            callback,
            outcome,
            response: rejection.into_response(),
        }
    }
}

/// Reads the whole body, refusing more than `limit` bytes while reading.
async fn read_body<T>(body: T, limit: usize) -> Result<Bytes, Rejection>
where
    T: hyper::body::Body<Data = Bytes>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(Rejection::PayloadTooLarge { limit }),
        Err(err) => Err(Rejection::Body(err.to_string())),
    }
}

/// The headers on every message: event type, account, conversation, trace context. Values that
/// could not stand in a header (control characters) are left out; the envelope has them all.
pub(crate) fn message_headers(webhook: &Webhook, event_type: &str, traceparent: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(EVENT_TYPE, event_type);
    if let Some(account) = webhook.account_sid().filter(|v| header_safe(v)) {
        map.insert(ACCOUNT_SID, account);
    }
    if let Some(sid) = webhook.conversation_sid().filter(|v| header_safe(v)) {
        map.insert(CONVERSATION_SID, sid);
    }
    map.insert(TRACEPARENT, traceparent);
    map
}

// Header names made once: a name given as `&str` is validated and copied on every insert.
const EVENT_TYPE: HeaderName = HeaderName::from_static(headers::EVENT_TYPE);
const ACCOUNT_SID: HeaderName = HeaderName::from_static(headers::ACCOUNT_SID);
const CONVERSATION_SID: HeaderName = HeaderName::from_static(headers::CONVERSATION_SID);
const TRACEPARENT: HeaderName = HeaderName::from_static(headers::TRACEPARENT);
pub(crate) const DEADLINE: HeaderName = HeaderName::from_static(headers::DEADLINE);
pub(crate) const MSG_ID: HeaderName = HeaderName::from_static(headers::MSG_ID);

pub(crate) fn header_safe(value: &str) -> bool {
    value.len() <= 256 && value.bytes().all(|b| (0x21..0x7f).contains(&b))
}

pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Holds `frontline_ingress_in_flight_requests` up while a request talks to NATS.
pub(crate) struct GaugeGuard<'a>(&'a IngressMetrics);

impl<'a> GaugeGuard<'a> {
    pub(crate) fn new(metrics: &'a IngressMetrics) -> GaugeGuard<'a> {
        metrics.in_flight.inc();
        GaugeGuard(metrics)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

#[cfg(test)]
mod tests;
