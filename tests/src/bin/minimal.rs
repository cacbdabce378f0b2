//! `minimal`: the least a webhook-to-NATS pipeline can do, as a yardstick for the ingress in
//! benchmarks. Hyper, the HMAC-SHA1 check of the form body (the ingress's own
//! `SignatureVerifier`), then either a NATS request to a responder that answers `{}`
//! (pre-events) or a JetStream publish awaited for its PubAck (post-events). No metrics, no
//! tracing, no envelope, no answer cache, no limits.
//!
//! ```text
//! minimal serve 127.0.0.1:8098 nats://127.0.0.1:4222 TOKEN https://hooks.example.com
//! minimal respond nats://127.0.0.1:4222
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
        _ => Err(
            "usage: minimal serve ADDR NATS_URL TOKEN PUBLIC_URL | minimal respond NATS_URL".into(),
        ),
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
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
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
