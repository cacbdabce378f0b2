//! `minimal`: yardsticks for the ingress in benchmarks, on the same stack (hyper, the ingress's
//! own `SignatureVerifier`, async-nats).
//!
//! - `serve` / `respond`: the least a webhook-to-NATS pipeline can do. The HMAC-SHA1 check of
//!   the form body, then either a NATS request to a responder that answers `{}` (pre-events) or
//!   a JetStream publish awaited for its PubAck (post-events). No headers, no envelope, no
//!   answer cache.
//! - `full` / `respond-full`: the least pipeline that does exactly the work SPEC.md asks of the
//!   product, and nothing else (no metrics, no tracing, no limits, no rules), written plainly.
//!   Every message gets the four headers (`Twilio-Event-Type`, `Twilio-Account-Sid`,
//!   `Twilio-Conversation-Sid`, `traceparent`) and the JSON envelope, on a per-conversation
//!   subject. A post-event also gets `Nats-Msg-Id` (a digest of the signed parameters), into a
//!   stream with a durable consumer. A pre-event also gets `Frontline-Deadline`, its responder
//!   decodes the envelope, the answer is written to a KV bucket (the answer cache), and Twilio
//!   gets it as `application/json`.
//! - `consumer`: creates a durable pull consumer (nobody pulls), so that a stream keeps the
//!   bookkeeping of the pipeline's `frontline-resolver` consumer.
//!
//! ```text
//! minimal serve 127.0.0.1:8098 nats://127.0.0.1:4222 TOKEN https://hooks.example.com
//! minimal respond nats://127.0.0.1:4222
//! minimal full 127.0.0.1:8099 nats://127.0.0.1:4222 TOKEN https://hooks.example.com
//! minimal respond-full nats://127.0.0.1:4222
//! minimal consumer nats://127.0.0.1:4222 FRONTLINE_EVENTS frontline-resolver 'frontline.post.onParticipantAdded.>'
//! ```

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use frontline_ingress::signature::SignatureVerifier;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const PRE_EVENTS: [&str; 2] = ["onConversationAdd", "onMessageAdd"];

struct State {
    nats: async_nats::Client,
    jetstream: async_nats::jetstream::Context,
    verifier: SignatureVerifier,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") if args.len() == 6 => serve(&args[2], &args[3], &args[4], &args[5]).await,
        Some("respond") if args.len() == 3 => respond(&args[2]).await,
        Some("full") if args.len() == 6 => full::serve(&args[2], &args[3], &args[4], &args[5]).await,
        Some("respond-full") if args.len() == 3 => full::respond(&args[2]).await,
        Some("consumer") if args.len() == 6 => {
            full::consumer(&args[2], &args[3], &args[4], &args[5]).await
        }
        _ => Err("usage: minimal serve|full ADDR NATS_URL TOKEN PUBLIC_URL | minimal respond|respond-full NATS_URL | minimal consumer NATS_URL STREAM NAME FILTER".into()),
    }
}

async fn respond(nats_url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = async_nats::connect(nats_url).await?;
    let mut requests = client
        .queue_subscribe("bench.pre.>", "bench".to_owned())
        .await?;
    while let Some(message) = requests.next().await {
        if let Some(reply) = message.reply {
            client.publish(reply, Bytes::from_static(b"{}")).await?;
        }
    }
    Ok(())
}

async fn serve(
    addr: &str,
    nats_url: &str,
    token: &str,
    public_url: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let nats = async_nats::connect(nats_url).await?;
    let jetstream = async_nats::jetstream::new(nats.clone());
    jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "BENCH_MINIMAL".into(),
            subjects: vec!["bench.post.>".into()],
            ..Default::default()
        })
        .await?;
    let state = Arc::new(State {
        nats,
        jetstream,
        verifier: SignatureVerifier::new(token.parse()?, public_url.parse()?),
    });
    accept(addr, state, |state, request| async move {
        handle(&state, request).await
    })
    .await
}

/// Serves HTTP/1 on `addr`: every request of every connection is answered by `handle`.
async fn accept<S, H, F>(
    addr: &str,
    state: Arc<S>,
    handle: H,
) -> Result<(), Box<dyn std::error::Error>>
where
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, http::Request<hyper::body::Incoming>) -> F + Copy + Send + Sync + 'static,
    F: std::future::Future<Output = http::Response<Full<Bytes>>> + Send,
{
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn status(code: u16) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = http::StatusCode::from_u16(code).expect("a valid status");
    response
}

async fn handle(
    state: &State,
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return status(400);
    };
    let params: Vec<_> = form_urlencoded::parse(&body).collect();
    let signed: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    let signature = parts
        .headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    if state
        .verifier
        .verify(parts.uri.path(), &signed, signature)
        .is_err()
    {
        return status(403);
    }
    let event = params
        .iter()
        .find(|(name, _)| name == "EventType")
        .map_or("unknown", |(_, value)| value.as_ref());
    if PRE_EVENTS.contains(&event) {
        match state.nats.request(format!("bench.pre.{event}"), body).await {
            Ok(reply) => http::Response::new(Full::new(reply.payload)),
            Err(_) => status(503),
        }
    } else {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(token) = parts.headers.get("i-twilio-idempotency-token") {
            headers.insert("Nats-Msg-Id", token.to_str().unwrap_or_default());
        }
        let published = state
            .jetstream
            .publish_with_headers(format!("bench.post.{event}"), headers, body)
            .await;
        let stored = match published {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        status(if stored { 200 } else { 503 })
    }
}

/// The yardstick that does the product's required work, and only that.
mod full {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use async_nats::jetstream::{self, consumer, stream};
    use bytes::Bytes;
    use frontline_ingress::signature::SignatureVerifier;
    use frontline_ingress::webhook::params_digest;
    use frontline_runtime::telemetry;
    use frontline_shared::subject;
    use futures::StreamExt;
    use http_body_util::{BodyExt, Full};
    use serde::Serialize;

    use super::{PRE_EVENTS, status};

    const STREAM: &str = "BENCH_EVENTS";
    const CACHE: &str = "BENCH_ANSWERS";
    const PRE_TIMEOUT: Duration = Duration::from_secs(3);

    struct State {
        nats: async_nats::Client,
        jetstream: jetstream::Context,
        verifier: SignatureVerifier,
        without: Without,
    }

    /// Parts of the contract left out, to measure what each costs (`FULL_WITHOUT`, a
    /// comma-separated list of: event-type, account-sid, conversation-sid, traceparent,
    /// msg-id, deadline, envelope, cache).
    #[derive(Default)]
    struct Without {
        event_type: bool,
        account_sid: bool,
        conversation_sid: bool,
        traceparent: bool,
        msg_id: bool,
        deadline: bool,
        envelope: bool,
        cache: bool,
    }

    impl Without {
        fn from_env() -> Result<Without, String> {
            let mut without = Without::default();
            let list = std::env::var("FULL_WITHOUT").unwrap_or_default();
            for part in list.split(',').filter(|p| !p.is_empty()) {
                let flag = match part {
                    "event-type" => &mut without.event_type,
                    "account-sid" => &mut without.account_sid,
                    "conversation-sid" => &mut without.conversation_sid,
                    "traceparent" => &mut without.traceparent,
                    "msg-id" => &mut without.msg_id,
                    "deadline" => &mut without.deadline,
                    "envelope" => &mut without.envelope,
                    "cache" => &mut without.cache,
                    other => return Err(format!("FULL_WITHOUT: unknown part {other}")),
                };
                *flag = true;
            }
            Ok(without)
        }
    }

    #[derive(Serialize)]
    struct Envelope<'a> {
        event_type: &'a str,
        account_sid: Option<&'a str>,
        received_at: String,
        idempotency_token: Option<&'a str>,
        params: BTreeMap<&'a str, &'a str>,
    }

    pub async fn serve(
        addr: &str,
        nats_url: &str,
        token: &str,
        public_url: &str,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let nats = async_nats::connect(nats_url).await?;
        let jetstream = jetstream::new(nats.clone());
        jetstream
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec!["yard.post.>".into()],
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                max_age: Duration::from_secs(3600),
                ..Default::default()
            })
            .await?;
        // The answer cache: a KV bucket in memory, bounded by age and size, oldest out first.
        jetstream
            .get_or_create_stream(stream::Config {
                name: format!("KV_{CACHE}"),
                subjects: vec![format!("$KV.{CACHE}.>")],
                storage: stream::StorageType::Memory,
                max_messages_per_subject: 1,
                max_age: Duration::from_secs(300),
                max_bytes: 64 * 1024 * 1024,
                discard: stream::DiscardPolicy::Old,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                ..Default::default()
            })
            .await?;
        consumer(
            nats_url,
            STREAM,
            "yard-resolver",
            "yard.post.onParticipantAdded.>",
        )
        .await?;
        let state = Arc::new(State {
            nats,
            jetstream,
            verifier: SignatureVerifier::new(token.parse()?, public_url.parse()?),
            without: Without::from_env()?,
        });
        super::accept(addr, state, |state, request| async move {
            handle(&state, request).await
        })
        .await
    }

    /// Creates a durable pull consumer on `stream` for `filter`, with explicit acks.
    pub async fn consumer(
        nats_url: &str,
        stream: &str,
        name: &str,
        filter: &str,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let nats = async_nats::connect(nats_url).await?;
        let stream = jetstream::new(nats).get_stream(stream).await?;
        stream
            .get_or_create_consumer(
                name,
                consumer::pull::Config {
                    durable_name: Some(name.to_owned()),
                    filter_subject: filter.to_owned(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await?;
        Ok(())
    }

    pub async fn respond(nats_url: &str) -> Result<(), Box<dyn std::error::Error>> {
        let client = async_nats::connect(nats_url).await?;
        let mut requests = client
            .queue_subscribe("yard.pre.>", "bench".to_owned())
            .await?;
        while let Some(message) = requests.next().await {
            let Some(reply) = message.reply else {
                continue;
            };
            let answer =
                match serde_json::from_slice::<frontline_shared::Envelope>(&message.payload) {
                    Ok(_) => Bytes::from_static(b"{}"),
                    Err(_) => Bytes::from_static(b"{\"error\":\"bad envelope\"}"),
                };
            client.publish(reply, answer).await?;
        }
        Ok(())
    }

    async fn handle(
        state: &State,
        request: http::Request<hyper::body::Incoming>,
    ) -> http::Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return status(400);
        };
        let params: Vec<_> = form_urlencoded::parse(&body).collect();
        let signed: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        if state
            .verifier
            .verify(parts.uri.path(), &signed, header("x-twilio-signature"))
            .is_err()
        {
            return status(403);
        }
        let param = |name: &str| signed.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let event = param("EventType").unwrap_or("unknown");
        let account = param("AccountSid");
        let conversation = param("ConversationSid");
        let idempotency_token = header("i-twilio-idempotency-token");

        let without = &state.without;
        let mut headers = async_nats::HeaderMap::new();
        if !without.event_type {
            headers.insert("Twilio-Event-Type", event);
        }
        if let Some(account) = account.filter(|_| !without.account_sid) {
            headers.insert("Twilio-Account-Sid", account);
        }
        if let Some(conversation) = conversation.filter(|_| !without.conversation_sid) {
            headers.insert("Twilio-Conversation-Sid", conversation);
        }
        if !without.traceparent {
            headers.insert("traceparent", telemetry::child_traceparent(None).as_str());
        }
        let payload = if without.envelope {
            body.clone()
        } else {
            let envelope = Envelope {
                event_type: event,
                account_sid: account,
                received_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
                idempotency_token,
                params: signed.iter().copied().collect(),
            };
            Bytes::from(serde_json::to_vec(&envelope).expect("serialisable"))
        };
        let pre = PRE_EVENTS.contains(&event);
        let needs_digest = if pre { !without.cache } else { !without.msg_id };
        // What Twilio signed, without RetryCount: a retry gets the same digest.
        let digest = needs_digest.then(|| params_digest(event, &signed));

        if pre {
            if !without.deadline {
                let deadline = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64)
                    + PRE_TIMEOUT.as_millis() as u64;
                headers.insert("Frontline-Deadline", deadline.to_string().as_str());
            }
            let subject = format!(
                "yard.pre.{}.{}",
                subject::token(Some(event)),
                subject::token(conversation)
            );
            let request = async_nats::Request::new()
                .headers(headers)
                .payload(payload)
                .timeout(Some(PRE_TIMEOUT));
            match state.nats.send_request(subject, request).await {
                Ok(reply) => {
                    if let Some(digest) = digest {
                        let mut cached = b"200 ".to_vec();
                        cached.extend_from_slice(&reply.payload);
                        let _ = state
                            .nats
                            .publish(format!("$KV.{CACHE}.{digest}"), Bytes::from(cached))
                            .await;
                    }
                    // SPEC.md: a pre-event's answer is JSON, and says so.
                    frontline_ingress::response::json(reply.payload)
                }
                Err(_) => status(200),
            }
        } else {
            if let Some(digest) = &digest {
                headers.insert("Nats-Msg-Id", digest.as_str());
            }
            let subject = format!(
                "yard.post.{}.{}",
                subject::token(Some(event)),
                subject::token(conversation)
            );
            let published = state
                .jetstream
                .publish_with_headers(subject, headers, payload)
                .await;
            let stored = match published {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            };
            status(if stored { 200 } else { 503 })
        }
    }
}
