//! Trace context and logs across a whole run, in a test binary of its own (it installs the
//! process-wide subscriber): the webhook's `traceparent` reaches the resolver's spans, the
//! Twilio REST call and the OTLP export; and no log line ever holds the auth token or a
//! signature.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use frontline_runtime::telemetry::{self, LogFormat};
use frontline_tests::fake_twilio::FakeTwilio;
use frontline_tests::http::{WEBHOOK_PATH, serve_local};
use frontline_tests::nats::NatsServer;
use frontline_tests::stack::{
    ingress_config, resolver_config_with_twilio, spawn_ingress, spawn_resolver,
};
use frontline_tests::{WAIT, eventually, twilio};
use http::Method;
use http_body_util::{BodyExt, Full};

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A local OTLP/HTTP receiver (no collector can be installed here): records each export's path
/// and protobuf body.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<(String, Bytes)>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let shared = received.clone();
    let addr = serve_local(move |request: http::Request<hyper::body::Incoming>| {
        let received = shared.clone();
        async move {
            let path = request.uri().path().to_owned();
            let body = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            received.lock().unwrap().push((path, body));
            http::Response::new(Full::new(Bytes::new()))
        }
    })
    .await;
    (format!("http://{addr}"), received)
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_flows_end_to_end_and_secrets_never_reach_the_logs() {
    let captured = Captured::default();
    let (otlp_url, exports) = otlp_receiver().await;
    let writer = captured.clone();
    let telemetry = telemetry::install(
        LogFormat::Text,
        "debug,async_nats=warn,hyper=warn,hyper_util=warn,reqwest=warn,opentelemetry=warn,opentelemetry_sdk=warn",
        Some(&otlp_url),
        "frontline-test",
        false,
        move || writer.clone(),
    );

    let nats = NatsServer::start();
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    let resolver = spawn_resolver(resolver_config_with_twilio(&nats.url(), &fake)).await;
    let ingress = spawn_ingress(ingress_config(&nats.url())).await;
    resolver.wait_ready().await;
    ingress.wait_ready().await;

    let pre_trace = "0af7651916cd43dd8448eb211c80319c";
    let pre_parent = format!("00-{pre_trace}-b7ad6b7169203331-01");
    let answer = ingress
        .client
        .post_with(
            &twilio::conversation_add("+14155550101"),
            &[("traceparent", &pre_parent)],
        )
        .await;
    assert_eq!(answer.json()["friendly_name"], "Bobby Shaftoe");

    let post_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let post_parent = format!("00-{post_trace}-00f067aa0ba902b7-01");
    let conversation = "CH00000000000000000000000000000777";
    fake.add_participant(conversation, "MB77", "{}");
    let params = twilio::participant_added(conversation, "MB77", "+14155550101");
    assert_eq!(
        ingress
            .client
            .post_with(&params, &[("traceparent", &post_parent)])
            .await
            .status,
        200
    );
    let rest_call = eventually(WAIT, "the participant update", || async {
        fake.requests()
            .into_iter()
            .find(|r| r.method == Method::POST)
    })
    .await;
    // The REST call continues the webhook's trace.
    let rest_parent = rest_call
        .traceparent
        .expect("a traceparent on the REST call");
    assert_eq!(
        frontline_runtime::telemetry::trace_id(&rest_parent),
        Some(post_trace)
    );

    // A forged request: its signature must not be logged either, and the trace it names is
    // not continued (an unsigned client does not choose its span's trace).
    let forged_signature = "Zm9yZ2VkLXNpZ25hdHVyZS12YWx1ZQ==";
    let forged_trace = "1111111111111111aaaaaaaaaaaaaaaa";
    let forged_parent = format!("00-{forged_trace}-2222222222222222-01");
    let forged = twilio::message_added(conversation, 1, "forged");
    let answer = ingress
        .client
        .post_form(
            WEBHOOK_PATH,
            &forged,
            &[
                ("X-Twilio-Signature", forged_signature),
                ("traceparent", &forged_parent),
            ],
        )
        .await;
    assert_eq!(answer.status, 403);

    // Values from a request are logged and recorded cut to 128 bytes: a 15 KB Content-Type
    // (refused, unsigned) and a signed 10 KB EventType.
    let junk_type = format!("application/{}", "x".repeat(15_000));
    let answer = ingress
        .client
        .send(
            Method::POST,
            WEBHOOK_PATH,
            &[("Content-Type", junk_type.as_str())],
            Bytes::new(),
        )
        .await;
    assert_eq!(answer.status, 415);
    let mut long_type = twilio::message_added(conversation, 9, "long type");
    for (name, value) in &mut long_type {
        if name == "EventType" {
            *value = format!("on{}", "y".repeat(10_000));
        }
    }
    assert_eq!(ingress.client.post(&long_type).await.status, 200);
    let valid_signature = twilio::sign(
        twilio::AUTH_TOKEN,
        &format!("{}{WEBHOOK_PATH}", twilio::PUBLIC_URL),
        &params,
    );

    ingress.stop().await;
    resolver.stop().await;

    // The resolver's handling of the pre-event is in the webhook's trace.
    let logs = captured.text();
    let resolver_line = logs
        .lines()
        .find(|line| line.contains("pre-event answered") && line.contains(pre_trace))
        .unwrap_or_else(|| panic!("no resolver line with trace id {pre_trace}:\n{logs}"));
    assert!(resolver_line.contains("pre_event"), "{resolver_line}");
    assert!(
        logs.lines()
            .any(|l| l.contains("participant enriched") && l.contains(post_trace)),
        "{logs}"
    );
    for secret in [
        twilio::AUTH_TOKEN,
        forged_signature,
        valid_signature.as_str(),
        "Basic ",
    ] {
        assert!(!logs.contains(secret), "a log line holds {secret:?}");
    }
    assert!(logs.contains("unsupported content type"), "{logs}");
    for junk in ["x", "y"] {
        assert!(
            !logs.contains(&junk.repeat(129)),
            "a log line holds more than 128 bytes of a request's {junk}s"
        );
    }
    assert!(
        !logs.contains(forged_trace),
        "an unsigned request's trace was continued"
    );

    // Both traces were exported over OTLP (ingress and resolver spans share the trace ids).
    telemetry.flush();
    let exported = eventually(Duration::from_secs(10), "an OTLP export", || async {
        let exports = exports.lock().unwrap().clone();
        (!exports.is_empty()).then_some(exports)
    })
    .await;
    assert!(
        exported.iter().all(|(path, _)| path == "/v1/traces"),
        "{:?}",
        exported.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    let bodies: Vec<u8> = exported
        .iter()
        .flat_map(|(_, body)| body.to_vec())
        .collect();
    for trace in [pre_trace, post_trace] {
        let raw = hex::decode(trace).unwrap();
        assert!(contains_bytes(&bodies, &raw), "trace {trace} not exported");
    }
    assert!(
        !contains_bytes(&bodies, &hex::decode(forged_trace).unwrap()),
        "an unsigned request's trace was exported"
    );
    for junk in [b'x', b'y'] {
        assert!(
            !contains_bytes(&bodies, &[junk; 129]),
            "a span holds more than 128 bytes of a request's value"
        );
    }
}
