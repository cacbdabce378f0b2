//! A local stand-in for Twilio's Conversations REST API (the one part of the world no test can
//! reach): `GET` and `POST /v1/Conversations/{sid}/Participants/{sid}`, HTTP Basic auth checked,
//! participants' attributes stored, every request recorded with the time it arrived, and failures
//! on demand (the next N requests answered 500, or 429 with `Retry-After`, or held without an
//! answer). It is as strict as Twilio about what it is sent: another method is 405, a POST whose
//! body is not a form is 415, so a client bug shows here rather than in production.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// GET or POST.
    pub method: Method,
    /// The path.
    pub path: String,
    /// The form body (POST).
    pub form: Vec<(String, String)>,
    /// The `traceparent` header, if sent.
    pub traceparent: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

/// A scripted failure for the next request.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// Answer with this status (and `Retry-After` seconds, if given).
    Status(u16, Option<u64>),
    /// Hold the request this long before answering normally.
    Hold(Duration),
    /// Answer 200 with a body of this many bytes (a JSON string).
    Oversized(usize),
}

#[derive(Debug, Default)]
struct State {
    participants: HashMap<(String, String), String>,
    /// Chat participants (workers) by conversation, in the order they were added.
    identities: HashMap<String, Vec<String>>,
    /// Webhook configurations: `None` the global one, else by service SID (only services added
    /// with [`FakeTwilio::add_service`] exist).
    configurations: HashMap<Option<String>, serde_json::Value>,
    requests: Vec<Recorded>,
    failures: VecDeque<Failure>,
}

/// The fake API; it serves until dropped with the test's runtime.
#[derive(Debug, Clone)]
pub struct FakeTwilio {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    https: bool,
}

impl FakeTwilio {
    /// Starts the fake on a random port, accepting `username:password` Basic auth.
    pub async fn start(username: &str, password: &str) -> FakeTwilio {
        FakeTwilio::start_with(username, password, None).await
    }

    /// Starts the fake over HTTPS with a certificate for `localhost` signed by `ca`.
    pub async fn start_tls(username: &str, password: &str, ca: &crate::tls::TestCa) -> FakeTwilio {
        FakeTwilio::start_with(username, password, Some(ca.server_config())).await
    }

    async fn start_with(
        username: &str,
        password: &str,
        tls: Option<rustls::ServerConfig>,
    ) -> FakeTwilio {
        let state = Arc::new(Mutex::new(State::default()));
        let expected = Arc::new(format!(
            "Basic {}",
            STANDARD.encode(format!("{username}:{password}"))
        ));
        let shared = state.clone();
        let handler = move |request| {
            let (state, expected) = (shared.clone(), expected.clone());
            async move { answer(request, &state, &expected).await }
        };
        let https = tls.is_some();
        let addr = match tls {
            Some(tls) => crate::http::serve_local_tls(handler, tls).await,
            None => crate::http::serve_local(handler).await,
        };
        FakeTwilio { addr, state, https }
    }

    /// The base URL to configure as `TWILIO_API_BASE` (`https://localhost:PORT` over TLS).
    pub fn base_url(&self) -> String {
        if self.https {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// Creates a participant with these attributes.
    pub fn add_participant(&self, conversation: &str, participant: &str, attributes: &str) {
        self.lock().participants.insert(
            (conversation.to_owned(), participant.to_owned()),
            attributes.to_owned(),
        );
    }

    /// Creates a Conversations service with an empty webhook configuration.
    pub fn add_service(&self, sid: &str) {
        self.lock()
            .configurations
            .insert(Some(sid.to_owned()), empty_configuration(false));
    }

    /// Replaces a webhook configuration (`None`: the global one).
    pub fn set_configuration(&self, service: Option<&str>, configuration: serde_json::Value) {
        self.lock()
            .configurations
            .insert(service.map(str::to_owned), configuration);
    }

    /// A webhook configuration as it stands (`None`: the global one).
    pub fn configuration(&self, service: Option<&str>) -> Option<serde_json::Value> {
        let state = self.lock();
        match service {
            None => Some(
                state
                    .configurations
                    .get(&None)
                    .cloned()
                    .unwrap_or_else(|| empty_configuration(true)),
            ),
            Some(sid) => state.configurations.get(&Some(sid.to_owned())).cloned(),
        }
    }

    /// The chat participants (identities) added to a conversation, in order.
    pub fn identities(&self, conversation: &str) -> Vec<String> {
        self.lock()
            .identities
            .get(conversation)
            .cloned()
            .unwrap_or_default()
    }

    /// A participant's current attributes.
    pub fn attributes(&self, conversation: &str, participant: &str) -> Option<String> {
        self.lock()
            .participants
            .get(&(conversation.to_owned(), participant.to_owned()))
            .cloned()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests with this method so far.
    pub fn count(&self, method: &Method) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    /// The time between consecutive requests with this method, in order.
    pub fn intervals(&self, method: &Method) -> Vec<Duration> {
        let times: Vec<Instant> = self
            .lock()
            .requests
            .iter()
            .filter(|r| r.method == method)
            .map(|r| r.at)
            .collect();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Scripts the next `times` requests to fail this way.
    pub fn fail_next(&self, times: usize, failure: Failure) {
        self.lock()
            .failures
            .extend(std::iter::repeat_n(failure, times));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn answer(
    request: Request<Incoming>,
    state: &Mutex<State>,
    expected_auth: &str,
) -> Response<Full<Bytes>> {
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected_auth);
    let at = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|essence| essence.trim() == "application/x-www-form-urlencoded")
        });
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    // Only a form body is read as one; anything else is refused below.
    let form: Vec<(String, String)> = if is_form {
        form_urlencoded::parse(&body).into_owned().collect()
    } else {
        Vec::new()
    };
    let failure = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            form: form.clone(),
            traceparent,
            at,
        });
        state.failures.pop_front()
    };
    match failure {
        Some(Failure::Status(status, retry_after)) => {
            let mut response = json(
                status,
                serde_json::json!({"code": 20500, "message": "scripted failure", "status": status}),
            );
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, seconds.into());
            }
            return response;
        }
        Some(Failure::Hold(duration)) => tokio::time::sleep(duration).await,
        Some(Failure::Oversized(bytes)) => {
            return json(200, serde_json::Value::String("a".repeat(bytes)));
        }
        None => {}
    }
    if method != Method::GET && method != Method::POST {
        let mut response = json(
            405,
            serde_json::json!({"code": 20004, "message": "Method not allowed", "status": 405}),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
        return response;
    }
    if method == Method::POST && !is_form {
        return json(
            415,
            serde_json::json!({"code": 20415, "message": "Unsupported Media Type", "status": 415}),
        );
    }
    if !authorized {
        return json(
            401,
            serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401}),
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let ["v1", "Conversations", conversation, "Participants"] = segments.as_slice() {
        return add_participant(state, conversation, &method, &form);
    }
    match segments.as_slice() {
        ["v1", "Configuration", "Webhooks"] => {
            return webhook_configuration(state, None, &method, &form);
        }
        ["v1", "Services", service, "Configuration", "Webhooks"] => {
            return webhook_configuration(state, Some(service), &method, &form);
        }
        _ => {}
    }
    let [
        "v1",
        "Conversations",
        conversation,
        "Participants",
        participant,
    ] = segments.as_slice()
    else {
        return json(
            404,
            serde_json::json!({"code": 20404, "message": "Not found", "status": 404}),
        );
    };
    let key = ((*conversation).to_owned(), (*participant).to_owned());
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(attributes) = state.participants.get_mut(&key) else {
        return json(
            404,
            serde_json::json!({"code": 20404, "message": "The requested resource was not found", "status": 404}),
        );
    };
    if method == Method::POST {
        match form.iter().find(|(name, _)| name == "Attributes") {
            Some((_, value)) if serde_json::from_str::<serde_json::Value>(value).is_ok() => {
                *attributes = value.clone()
            }
            _ => {
                return json(
                    400,
                    serde_json::json!({"code": 50100, "message": "Invalid Attributes", "status": 400}),
                );
            }
        }
    }
    json(
        200,
        serde_json::json!({
            "account_sid": "AC00000000000000000000000000000001",
            "conversation_sid": conversation,
            "sid": participant,
            "identity": null,
            "attributes": attributes.clone(),
            "messaging_binding": {"type": "sms", "address": "+14155550101", "proxy_address": "+18005550100"},
            "url": format!("https://conversations.twilio.com{path}"),
        }),
    )
}

fn empty_configuration(global: bool) -> serde_json::Value {
    let mut configuration = serde_json::json!({
        "pre_webhook_url": null, "post_webhook_url": null, "filters": [], "method": "POST",
    });
    if global {
        configuration["target"] = serde_json::json!("webhook");
    }
    configuration
}

/// `GET`/`POST` of the global or a service's webhook configuration: a POST sets the fields it
/// sends (`Filters` repeated replaces the list).
fn webhook_configuration(
    state: &Mutex<State>,
    service: Option<&str>,
    method: &Method,
    form: &[(String, String)],
) -> Response<Full<Bytes>> {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let key = service.map(str::to_owned);
    let Some(current) = (match service {
        None => Some(
            state
                .configurations
                .entry(None)
                .or_insert_with(|| empty_configuration(true)),
        ),
        Some(_) => state.configurations.get_mut(&key),
    }) else {
        return json(
            404,
            serde_json::json!({"code": 20404, "message": "The requested resource was not found", "status": 404}),
        );
    };
    if *method == Method::POST {
        let filters: Vec<&String> = form
            .iter()
            .filter(|(name, _)| name == "Filters")
            .map(|(_, value)| value)
            .collect();
        if !filters.is_empty() {
            current["filters"] = serde_json::json!(filters);
        }
        for (field, key) in [
            ("PreWebhookUrl", "pre_webhook_url"),
            ("PostWebhookUrl", "post_webhook_url"),
            ("Method", "method"),
            ("Target", "target"),
        ] {
            if let Some((_, value)) = form.iter().find(|(name, _)| name == field) {
                current[key] = serde_json::json!(value);
            }
        }
    }
    json(200, current.clone())
}

/// `POST /v1/Conversations/{sid}/Participants` with `Identity`: 201, or 409 when that identity
/// is already a participant.
fn add_participant(
    state: &Mutex<State>,
    conversation: &str,
    method: &Method,
    form: &[(String, String)],
) -> Response<Full<Bytes>> {
    if *method != Method::POST {
        return json(
            405,
            serde_json::json!({"code": 20004, "message": "Method not allowed", "status": 405}),
        );
    }
    let Some((_, identity)) = form.iter().find(|(name, _)| name == "Identity") else {
        return json(
            400,
            serde_json::json!({"code": 50100, "message": "Identity is required", "status": 400}),
        );
    };
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let identities = state.identities.entry(conversation.to_owned()).or_default();
    if identities.contains(identity) {
        return json(
            409,
            serde_json::json!({"code": 50433, "message": "Participant already exists", "status": 409}),
        );
    }
    identities.push(identity.clone());
    json(
        201,
        serde_json::json!({"conversation_sid": conversation, "identity": identity,
                           "sid": format!("MB{:032}", identities.len())}),
    )
}

fn json(status: u16, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
