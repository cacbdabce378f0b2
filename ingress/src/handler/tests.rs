//! The handler in front of a fake broker: answers, outcomes and load shedding, without NATS.

use std::sync::Mutex;

use frontline_shared::Modification;
use http_body_util::Full;
use tokio::sync::Notify;

use super::*;
use crate::broker::RequestError;

/// Records what it is asked and answers as told; `hold` keeps requests in flight until notified.
#[derive(Default)]
struct FakeBroker {
    reply: Mutex<Option<Result<Bytes, RequestError>>>,
    stored: Mutex<Vec<(String, HeaderMap)>>,
    hold: Option<Arc<Notify>>,
    cache: Mutex<Vec<(String, Bytes)>>,
    /// Every publish fails as if NATS were down.
    down: bool,
}

impl Broker for FakeBroker {
    async fn request(
        &self,
        subject: String,
        headers: HeaderMap,
        _: Bytes,
        _: Duration,
    ) -> Result<Bytes, RequestError> {
        self.stored.lock().unwrap().push((subject, headers));
        if let Some(hold) = &self.hold {
            hold.notified().await;
        }
        self.reply
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Err(RequestError::NoResponders))
    }

    async fn publish(
        &self,
        subject: String,
        headers: Headers<'_>,
        _: Bytes,
    ) -> Result<Stored, PublishError> {
        if let Some(hold) = &self.hold {
            hold.notified().await;
        }
        if self.down {
            return Err(PublishError::Disconnected);
        }
        self.stored.lock().unwrap().push((subject, headers()));
        Ok(Stored::New)
    }

    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    async fn cached_answer(&self, key: &str) -> Option<Bytes> {
        self.cache
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    async fn cache_answer(&self, key: String, answer: Bytes) {
        self.cache.lock().unwrap().push((key, answer));
    }
}

fn app(broker: FakeBroker, max_in_flight: usize) -> Arc<WebhookHandler<FakeBroker>> {
    Arc::new(WebhookHandler {
        broker,
        reader: WebhookReader::new(None),
        subjects: Subjects::default(),
        metrics: IngressMetrics::new().unwrap(),
        max_body_bytes: 1_024,
        pre_event_timeout: Duration::from_millis(100),
        fallback: Fallback::Accept,
        in_flight: Arc::new(Semaphore::new(max_in_flight)),
        callback_timeout: Duration::from_millis(100),
        spool: None,
    })
}

fn form(body: &str) -> Request<Full<Bytes>> {
    Request::post(WEBHOOK_PATH)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

async fn body_of(response: HttpResponse) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn resolver_replies_become_twilio_answers() {
    let cases = [
        (PreReply::Accept.to_vec(), 200, "{}"),
        (
            PreReply::Modify {
                fields: Modification {
                    body: Some("[redacted]".into()),
                    ..Modification::default()
                },
            }
            .to_vec(),
            200,
            r#"{"body":"[redacted]"}"#,
        ),
        (
            PreReply::Modify {
                fields: Modification::default(),
            }
            .to_vec(),
            200,
            "{}",
        ),
        (
            PreReply::Reject {
                reason: "spam".into(),
            }
            .to_vec(),
            403,
            "",
        ),
        (b"garbage".to_vec(), 200, "{}"),
    ];
    for (reply, status, body) in cases {
        let broker = FakeBroker {
            reply: Mutex::new(Some(Ok(Bytes::from(reply)))),
            ..FakeBroker::default()
        };
        let app = app(broker, 8);
        let response = app
            .clone()
            .handle(form("EventType=onMessageAdd&ConversationSid=CH1"))
            .await;
        assert_eq!(response.status(), status);
        assert_eq!(body_of(response).await, body);
        let asked = app.broker.stored.lock().unwrap();
        assert_eq!(asked[0].0, "frontline.pre.onMessageAdd.CH1");
        assert!(
            asked[0]
                .1
                .get(frontline_shared::headers::DEADLINE)
                .is_some()
        );
    }
}

/// A reply the ingress cannot read as a decision, however close to one, takes the fallback
/// (here `reject`: 503), never a guess.
#[tokio::test]
async fn malformed_replies_take_the_fallback() {
    for reply in [
        &b"garbage"[..],
        br#"{"action":"maybe"}"#,
        br#"{"action":"modify"}"#,
        br#"{"action":"modify","fields":"{}"}"#,
        br#"{"action":"reject","reason":7}"#,
        br#"{"action":"accept","fields":5}"#,
        br#"{"fields":{"body":"x"}}"#,
    ] {
        let broker = FakeBroker {
            reply: Mutex::new(Some(Ok(Bytes::from_static(reply)))),
            ..FakeBroker::default()
        };
        let app = Arc::new(WebhookHandler {
            fallback: Fallback::Reject,
            ..Arc::into_inner(app(broker, 8)).unwrap()
        });
        let response = app
            .handle(form("EventType=onMessageAdd&ConversationSid=CH1"))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            String::from_utf8_lossy(reply)
        );
    }
}

/// NATS down: a post-event goes to the spool with the headers a direct publish would have had
/// (its `Nats-Msg-Id` above all, so a retry is still stored once), and is forwarded with them.
#[tokio::test]
async fn a_spooled_post_event_is_forwarded_with_its_headers() {
    let dir = std::env::temp_dir().join(format!("spool-headers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spool = crate::spool::Spool::open(&dir, 1 << 20, IngressMetrics::new().unwrap()).unwrap();
    let down = FakeBroker {
        down: true,
        ..FakeBroker::default()
    };
    let app = Arc::new(WebhookHandler {
        spool: Some(spool.clone()),
        ..Arc::into_inner(app(down, 8)).unwrap()
    });
    let body = "EventType=onMessageAdded&AccountSid=AC1&ConversationSid=CH1&Body=hi";
    let response = app.clone().handle(form(body)).await;
    assert_eq!(response.status(), StatusCode::OK, "spooled");

    let up = Arc::new(FakeBroker::default());
    let forwarding = tokio::spawn(spool.forward(up.clone()));
    let mut forwarded = None;
    for _ in 0..100 {
        if let Some(first) = up.stored.lock().unwrap().first().cloned() {
            forwarded = Some(first);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    forwarding.abort();
    let _ = std::fs::remove_dir_all(&dir);
    let (subject, sent) = forwarded.expect("the spooled event is forwarded");
    assert_eq!(subject, "frontline.post.onMessageAdded.CH1");
    let webhook = WebhookReader::new(None)
        .read(RawRequest {
            path_and_query: WEBHOOK_PATH,
            body_kind: Some(BodyKind::Form),
            body: body.as_bytes(),
            signature: None,
            signature_settings: None,
            idempotency_token: None,
        })
        .unwrap();
    let value = |name: &str| sent.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(value(headers::MSG_ID), Some(webhook.dedupe_id()));
    assert_eq!(
        value(headers::EVENT_TYPE).as_deref(),
        Some("onMessageAdded")
    );
    assert_eq!(value(headers::ACCOUNT_SID).as_deref(), Some("AC1"));
    assert_eq!(value(headers::CONVERSATION_SID).as_deref(), Some("CH1"));
}

#[tokio::test]
async fn over_max_in_flight_pre_events_fall_back_and_post_events_get_503() {
    let hold = Arc::new(Notify::new());
    let app = app(
        FakeBroker {
            hold: Some(hold.clone()),
            ..FakeBroker::default()
        },
        1,
    );
    let first = tokio::spawn(app.clone().handle(form("EventType=onMessageAdded")));
    tokio::time::timeout(Duration::from_secs(5), async {
        while app.in_flight.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the first request takes the only permit within 5 s");
    let pre = app
        .clone()
        .handle(form("EventType=onConversationAdd"))
        .await;
    assert_eq!(pre.status(), 200);
    assert_eq!(body_of(pre).await, "{}");
    let post = app.clone().handle(form("EventType=onMessageAdded")).await;
    assert_eq!(post.status(), 503);
    assert_eq!(post.headers()[header::RETRY_AFTER], "1");
    hold.notify_one();
    assert_eq!(first.await.unwrap().status(), 200);
    assert_eq!(app.metrics.in_flight.get(), 0);
}

#[tokio::test]
async fn rejections_are_answered_before_the_broker() {
    let app = app(FakeBroker::default(), 8);
    let get_without_type = Request::get(WEBHOOK_PATH)
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(app.clone().handle(get_without_type).await.status(), 400);
    let too_big = form(&format!(
        "EventType=onMessageAdded&Body={}",
        "x".repeat(2_000)
    ));
    assert_eq!(app.clone().handle(too_big).await.status(), 413);
    let put = Request::put(WEBHOOK_PATH)
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(app.clone().handle(put).await.status(), 405);
    let elsewhere = Request::get("/webhooks/other")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(app.clone().handle(elsewhere).await.status(), 404);
    assert!(app.broker.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_event_types_keep_their_name_in_the_header_when_it_is_safe() {
    let app = app(FakeBroker::default(), 8);
    for (body, subject, header) in [
        (
            "EventType=onBrandNew&ConversationSid=CH1",
            "frontline.post.unknown.CH1",
            "onBrandNew",
        ),
        (
            "EventType=on+Junk%0D%0A",
            "frontline.post.unknown._",
            "unknown",
        ),
    ] {
        assert_eq!(app.clone().handle(form(body)).await.status(), 200);
        let stored = app.broker.stored.lock().unwrap().pop().unwrap();
        assert_eq!(stored.0, subject);
        assert_eq!(
            stored
                .1
                .get(frontline_shared::headers::EVENT_TYPE)
                .map(|v| v.as_str()),
            Some(header)
        );
    }
}
