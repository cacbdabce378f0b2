//! Twilio retrying a pre-event (an idempotency token, `RetryCount` above 0) gets the answer already
//! given, from any ingress replica, without the resolvers being asked twice; fallbacks are not
//! remembered. Answers are keyed by what Twilio signed, so here each webhook is told apart by a
//! parameter (its `UniqueName`), and its token names the same webhook.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use frontline_shared::{Modification, PreReply};
use frontline_tests::nats::NatsServer;
use frontline_tests::stack::{Ingress, connect, ingress_config, responder, spawn_ingress};
use frontline_tests::{WAIT, eventually, twilio};

const BUCKET: &str = "frontline-pre-answers";

/// A resolver stand-in whose every answer is new ("answer-1", "answer-2", ...), so a repeated
/// answer can only come from the cache. Returns how many requests it has answered.
async fn counting_responder(nats_url: &str) -> Arc<AtomicUsize> {
    responder(nats_url, Duration::ZERO, |n| {
        let fields = Modification {
            friendly_name: Some(format!("answer-{n}")),
            ..Modification::default()
        };
        Some(PreReply::Modify { fields }.to_vec())
    })
    .await
}

/// The parameters of webhook `id` (its `UniqueName`), attempt `retry`.
fn webhook(id: &str, retry: u32) -> twilio::Params {
    let mut params = twilio::conversation_add("+14155550101");
    params.push(("UniqueName".to_owned(), id.to_owned()));
    for (key, value) in &mut params {
        if key == "RetryCount" {
            *value = retry.to_string();
        }
    }
    params
}

/// Sends webhook `token` (see [`webhook`]) with that idempotency token, or webhook `no-token`
/// without one; `retry` is Twilio's `RetryCount` (0 on a first attempt).
async fn name(ingress: &Ingress, token: Option<&str>, retry: u32) -> String {
    let params = webhook(token.unwrap_or("no-token"), retry);
    let headers: Vec<(&str, &str)> = token
        .map(|t| ("I-Twilio-Idempotency-Token", t))
        .into_iter()
        .collect();
    let answer = ingress.client.post_with(&params, &headers).await;
    assert_eq!(answer.status, 200);
    answer.json()["friendly_name"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// The answer cache's bucket, once an ingress has opened it.
async fn answer_cache(js: &jetstream::Context) -> kv::Store {
    eventually(WAIT, "the answer cache bucket", || async {
        js.get_key_value(BUCKET).await.ok()
    })
    .await
}

/// The cached answer to webhook `token`, if any. A failed lookup
/// fails the test: it must not pass for an absent answer.
async fn cached(store: &kv::Store, token: &str) -> Option<bytes::Bytes> {
    let key = frontline_ingress::webhook::params_digest("onConversationAdd", &webhook(token, 0));
    store.get(&key).await.expect("the answer cache can be read")
}

#[tokio::test]
async fn retries_get_the_same_answer_from_any_replica() {
    let nats = NatsServer::start();
    let first = spawn_ingress(ingress_config(&nats.url())).await;
    let second = spawn_ingress(ingress_config(&nats.url())).await;
    first.wait_ready().await;
    second.wait_ready().await;
    let js = jetstream::new(connect(&nats.url()).await);
    let store = answer_cache(&js).await;

    // No resolver yet: the fallback, which is not remembered.
    assert_eq!(name(&first, Some("retry-0"), 0).await, "");
    assert!(cached(&store, "retry-0").await.is_none());

    let asked = counting_responder(&nats.url()).await;
    assert_eq!(
        name(&first, Some("retry-0"), 1).await,
        "answer-1",
        "a retry after a fallback is asked again"
    );
    eventually(WAIT, "the answer to be cached", || {
        cached(&store, "retry-0")
    })
    .await;
    assert_eq!(
        name(&second, Some("retry-0"), 2).await,
        "answer-1",
        "the other replica gives the same answer"
    );
    assert_eq!(name(&first, Some("retry-0"), 3).await, "answer-1");
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "the resolvers were asked once"
    );

    // Another token, and no token at all, are asked.
    assert_eq!(name(&second, Some("retry-1"), 1).await, "answer-2");
    assert_eq!(name(&second, None, 1).await, "answer-3");
    assert_eq!(name(&second, None, 1).await, "answer-4");
    // A first attempt (RetryCount=0) cannot be a retry: it is asked, with no cache lookup.
    assert_eq!(name(&second, Some("retry-1"), 0).await, "answer-5");
    assert_eq!(asked.load(Ordering::SeqCst), 5);
    let metrics = frontline_tests::http::admin_get(second.admin, "/metrics")
        .await
        .text();
    assert_eq!(
        frontline_tests::http::metric(
            &metrics,
            r#"frontline_ingress_pre_event_cache_total{result="hit"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn the_answer_cache_is_bounded_and_keeps_the_newest() {
    const LIMIT: u64 = 4096;
    let nats = NatsServer::start();
    let mut config = ingress_config(&nats.url());
    config.pre_event_cache_max_bytes = LIMIT;
    let ingress = spawn_ingress(config).await;
    ingress.wait_ready().await;
    let js = jetstream::new(connect(&nats.url()).await);
    let store = answer_cache(&js).await;
    let asked = counting_responder(&nats.url()).await;

    // Far more answers than fit: every webhook is still answered by a resolver.
    for n in 1..=200 {
        assert_eq!(
            name(&ingress, Some(&format!("token-{n}")), 0).await,
            format!("answer-{n}")
        );
    }
    assert_eq!(asked.load(Ordering::SeqCst), 200);
    eventually(WAIT, "the newest answer to be cached", || {
        cached(&store, "token-200")
    })
    .await;
    let mut stream = js.get_stream(format!("KV_{BUCKET}")).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.max_bytes, LIMIT as i64);
    assert!(
        info.state.bytes <= LIMIT,
        "{} bytes stored",
        info.state.bytes
    );
    assert!(info.state.messages < 200, "the oldest answers were dropped");
    assert_eq!(cached(&store, "token-1").await, None);
    // A retry of a recent webhook is still answered from the cache.
    assert_eq!(name(&ingress, Some("token-200"), 1).await, "answer-200");
    assert_eq!(asked.load(Ordering::SeqCst), 200);
}

#[tokio::test]
async fn an_answer_cache_made_by_an_older_version_gets_its_limits() {
    let nats = NatsServer::start();
    let js = jetstream::new(connect(&nats.url()).await);
    // The layout of earlier versions: no size limit, new writes refused when full.
    frontline_runtime::nats::open_kv_bucket(
        &js,
        BUCKET,
        Duration::from_secs(300),
        jetstream::stream::StorageType::Memory,
    )
    .await
    .unwrap();
    let ingress = spawn_ingress(ingress_config(&nats.url())).await;
    ingress.wait_ready().await;
    let config = eventually(WAIT, "the bucket's limits brought up to date", || {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream(format!("KV_{BUCKET}")).await.ok()?;
            let config = stream.info().await.ok()?.config.clone();
            (config.max_bytes == 64 * 1024 * 1024).then_some(config)
        }
    })
    .await;
    assert_eq!(config.discard, jetstream::stream::DiscardPolicy::Old);
    // And it serves: an answer is cached and given to a retry.
    let asked = counting_responder(&nats.url()).await;
    assert_eq!(name(&ingress, Some("old-bucket"), 0).await, "answer-1");
    let store = answer_cache(&js).await;
    eventually(WAIT, "the answer to be cached", || {
        cached(&store, "old-bucket")
    })
    .await;
    assert_eq!(name(&ingress, Some("old-bucket"), 1).await, "answer-1");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}
