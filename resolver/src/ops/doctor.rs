//! `resolver doctor`: every check of what the pipeline needs, each with a one-line hint naming
//! the variable or console field to fix when it fails. The last check signs an
//! `onConversationAdd` for `PUBLIC_URL` exactly as Twilio would and sends it there, so a wrong
//! `PUBLIC_URL`, a proxy that rewrites the path, or a token mismatch shows before Twilio calls.

use std::time::Duration;

use async_nats::jetstream;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use frontline_shared::subject::{DLQ_STREAM, RESOLVER_CONSUMER, ROUTER_CONSUMER};
use hmac::{Hmac, Mac};
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use sha1::Sha1;

use crate::config::Config;
use crate::ops::setup::{NEEDED_FILTERS, WEBHOOK_PATH};
use crate::twilio::{self, WebhookConfiguration};

/// How long each network check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub check: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn pass(check: &'static str, detail: impl Into<String>) -> Check {
    Check {
        check,
        ok: true,
        detail: detail.into(),
        hint: None,
    }
}

fn fail(check: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
    Check {
        check,
        ok: false,
        detail: detail.into(),
        hint: Some(hint.into()),
    }
}

/// Runs every check (the signed request to `PUBLIC_URL` unless `skip_public`).
pub async fn run(config: &Config, skip_public: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    let nats = nats_checks(config).await;
    checks.extend(nats);
    checks.push(directory_check(config).await);
    let (credentials, configuration) = twilio_checks(config).await;
    checks.push(credentials);
    checks.push(configuration);
    if !skip_public {
        checks.push(public_check(config).await);
    }
    checks
}

/// The checks as a person reads them: ✔/✘, the finding, the hint.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        let mark = if check.ok { '✔' } else { '✘' };
        out.push_str(&format!("{mark} {}: {}\n", check.check, check.detail));
        if let Some(hint) = &check.hint {
            out.push_str(&format!("    hint: {hint}\n"));
        }
    }
    out
}

async fn nats_checks(config: &Config) -> Vec<Check> {
    const NATS: &str = "NATS reachable";
    const STREAMS: &str = "streams and consumers";
    let hint = "check NATS_URL and the credentials (NATS_USER/NATS_PASSWORD, NATS_CREDS, NATS_TOKEN, NATS_NKEY_SEED, NATS_CA_FILE for tls://)";
    let (client, mut connected) = match config.nats.connect("frontline-doctor").await {
        Ok(connection) => connection,
        Err(err) => return vec![fail(NATS, err.to_string(), hint)],
    };
    let up = tokio::time::timeout(CHECK_TIMEOUT, connected.wait_for(|up| *up)).await;
    if !matches!(up, Ok(Ok(_))) {
        return vec![
            fail(
                NATS,
                format!("no connection to {} within 5 s", config.nats.url),
                hint,
            ),
            fail(STREAMS, "not checked: NATS unreachable", "fix NATS first"),
        ];
    }
    let mut checks = vec![pass(NATS, config.nats.url.clone())];
    let js = jetstream::new(client);
    let mut missing = Vec::new();
    for stream in [config.stream_name.as_str(), DLQ_STREAM] {
        if js.get_stream(stream).await.is_err() {
            missing.push(format!("stream {stream}"));
        }
    }
    if let Ok(stream) = js.get_stream(&config.stream_name).await {
        for consumer in [RESOLVER_CONSUMER, ROUTER_CONSUMER] {
            let found: Result<jetstream::consumer::PullConsumer, _> =
                stream.get_consumer(consumer).await;
            if found.is_err() {
                missing.push(format!("consumer {consumer}"));
            }
        }
    }
    checks.push(if missing.is_empty() {
        pass(
            STREAMS,
            format!(
                "{}, {DLQ_STREAM}, {RESOLVER_CONSUMER}, {ROUTER_CONSUMER}",
                config.stream_name
            ),
        )
    } else {
        fail(
            STREAMS,
            format!("missing: {}", missing.join(", ")),
            "start the ingress (it creates the stream; STREAM_NAME must match) and a resolver with Twilio credentials (it creates the DLQ and consumers)",
        )
    });
    checks
}

async fn directory_check(config: &Config) -> Check {
    const CHECK: &str = "customer directory and templates";
    let templates = match config.templates.load() {
        Ok(templates) => templates,
        Err(err) => {
            return fail(
                CHECK,
                err,
                "set TEMPLATES=file:PATH to a JSON array of template categories",
            );
        }
    };
    let (client, _) = match config.nats.connect("frontline-doctor-directory").await {
        Ok(connection) => connection,
        Err(err) => return fail(CHECK, err.to_string(), "check NATS_URL"),
    };
    let js = jetstream::new(client);
    let loading = crate::directory::load(&config.customer_directory, &js);
    match tokio::time::timeout(CHECK_TIMEOUT, loading).await {
        Ok(Ok(directory)) => pass(
            CHECK,
            format!(
                "{} customers, {} template categories",
                directory.all().len(),
                templates.len()
            ),
        ),
        Ok(Err(err)) => fail(
            CHECK,
            err.to_string(),
            "set CUSTOMER_DIRECTORY to file:PATH (a JSON array of customer records) or nats-kv:BUCKET",
        ),
        Err(_) => fail(
            CHECK,
            "the KV directory could not be read within 5 s",
            "check CUSTOMER_DIRECTORY=nats-kv:BUCKET and NATS",
        ),
    }
}

async fn twilio_checks(config: &Config) -> (Check, Check) {
    const CREDENTIALS: &str = "Twilio credentials";
    const CONFIGURATION: &str = "Twilio webhook configuration";
    let skipped = || {
        fail(
            CONFIGURATION,
            "not checked: no usable Twilio credentials",
            "fix the credentials first",
        )
    };
    let twilio = match crate::ops::twilio_client(config) {
        Ok(twilio) => twilio,
        Err(err) => {
            return (
                fail(
                    CREDENTIALS,
                    err,
                    "set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)",
                ),
                skipped(),
            );
        }
    };
    let current = match tokio::time::timeout(CHECK_TIMEOUT, twilio.webhook_configuration(None))
        .await
    {
        Ok(Ok(current)) => current,
        Ok(Err(err)) => {
            return (
                fail(
                    CREDENTIALS,
                    err.to_string(),
                    "Twilio refused: check TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN (or TWILIO_API_KEY/TWILIO_API_SECRET), and TWILIO_API_BASE",
                ),
                skipped(),
            );
        }
        Err(_) => {
            return (
                fail(
                    CREDENTIALS,
                    "no answer within 5 s",
                    "check TWILIO_API_BASE and the network to it",
                ),
                skipped(),
            );
        }
    };
    let credentials = pass(CREDENTIALS, "accepted by Twilio");
    (credentials, configuration_check(config, &current))
}

fn configuration_check(config: &Config, current: &WebhookConfiguration) -> Check {
    const CHECK: &str = "Twilio webhook configuration";
    let Ok(public) = crate::ops::public_url(config) else {
        return fail(
            CHECK,
            "PUBLIC_URL is not set",
            "set PUBLIC_URL to the origin Twilio calls, as the ingress has it",
        );
    };
    let url = format!("{public}{WEBHOOK_PATH}");
    let mut wrong = Vec::new();
    if current.pre_webhook_url.as_deref() != Some(url.as_str()) {
        wrong.push(format!(
            "Pre-Event URL is {:?}",
            current.pre_webhook_url.as_deref().unwrap_or("")
        ));
    }
    if current.post_webhook_url.as_deref() != Some(url.as_str()) {
        wrong.push(format!(
            "Post-Event URL is {:?}",
            current.post_webhook_url.as_deref().unwrap_or("")
        ));
    }
    let missing: Vec<&str> = NEEDED_FILTERS
        .iter()
        .copied()
        .filter(|needed| !current.filters.iter().any(|f| f == needed))
        .collect();
    if !missing.is_empty() {
        wrong.push(format!("filters lack {}", missing.join(", ")));
    }
    if wrong.is_empty() {
        pass(
            CHECK,
            format!("both URLs at {url}, filters {}", current.filters.join(",")),
        )
    } else {
        fail(
            CHECK,
            wrong.join("; "),
            format!(
                "run `resolver twilio-setup --apply`, or in the Console set Conversations > Manage > Global webhooks: Pre-Event and Post-Event URL {url}, filters onConversationAdd and onParticipantAdded"
            ),
        )
    }
}

/// A test `onConversationAdd` from an address no directory holds: a resolver answers it by
/// naming the conversation after the address; the fallback answers `{}`.
const TEST_ADDRESS: &str = "+10005550199";

async fn public_check(config: &Config) -> Check {
    const CHECK: &str = "signed test request to PUBLIC_URL";
    let public = match crate::ops::public_url(config) {
        Ok(public) => public,
        Err(err) => return fail(CHECK, err, "set PUBLIC_URL as the ingress has it"),
    };
    let account = config.twilio_account_sid.clone().unwrap_or_default();
    let Some(token) = config
        .twilio_auth_tokens
        .as_ref()
        .and_then(|tokens| tokens.for_rest(&account))
    else {
        return fail(
            CHECK,
            "no TWILIO_AUTH_TOKEN to sign with",
            "set TWILIO_AUTH_TOKEN as the ingress has it",
        );
    };
    let url = format!("{public}{WEBHOOK_PATH}");
    let params = [
        ("AccountSid", account.as_str()),
        ("EventType", "onConversationAdd"),
        ("MessagingBinding.Address", TEST_ADDRESS),
        ("RetryCount", "0"),
        ("Source", "SMS"),
    ];
    let signature = sign(token.expose(), &url, &params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let answer = tokio::time::timeout(CHECK_TIMEOUT, post(config, &url, &signature, body)).await;
    let hint_url = "PUBLIC_URL must be the origin Twilio calls, the same on the ingress, and a proxy in between must not rewrite the path";
    match answer {
        Err(_) => fail(CHECK, format!("no answer from {url} within 5 s"), hint_url),
        Ok(Err(err)) => fail(CHECK, format!("{url}: {err}"), hint_url),
        Ok(Ok((200, body))) if body.contains(TEST_ADDRESS) => {
            pass(CHECK, format!("{url} answered by a resolver"))
        }
        Ok(Ok((200, _))) => fail(
            CHECK,
            format!("{url} answered with the fallback: no resolver answered"),
            "start a resolver (same NATS, SUBJECT_PREFIX and NATS_INBOX_PREFIX as the ingress)",
        ),
        Ok(Ok((403, _))) => fail(
            CHECK,
            format!("{url} refused the signature (403)"),
            "TWILIO_AUTH_TOKEN must match the ingress's, and PUBLIC_URL the ingress's (a proxy must not change the path or query)",
        ),
        Ok(Ok((404, _))) => fail(
            CHECK,
            format!("{url} is not the ingress's webhook (404)"),
            hint_url,
        ),
        Ok(Ok((status, _))) => fail(CHECK, format!("{url} answered {status}"), hint_url),
    }
}

/// `X-Twilio-Signature` for a form POST, as Twilio computes it (the ingress verifies it with its
/// own code; this one only signs).
fn sign(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("any key size");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

async fn post(
    config: &Config,
    url: &str,
    signature: &str,
    body: String,
) -> Result<(u16, String), String> {
    let tls =
        twilio::tls_config(config.twilio_ca_file.as_deref()).map_err(|err| err.to_string())?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(connector);
    let request = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(Full::new(Bytes::from(body)))
        .map_err(|err| err.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status().as_u16();
    let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    Ok((status, body))
}
