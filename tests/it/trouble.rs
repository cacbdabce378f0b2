//! Behaviour under trouble: no resolvers, slow or broken resolvers, NATS down at start and back,
//! graceful shutdown with requests in flight.

use std::time::{Duration, Instant};

use frontline_ingress::config::Fallback;
use frontline_shared::subject;
use frontline_shared::{Modification, PreReply};
use frontline_tests::http::{admin_get, metric};
use frontline_tests::nats::{NatsServer, free_port};
use frontline_tests::stack::{
    connect, ingress_config, ready_ingress, resolver_config, responder, spawn_ingress,
    spawn_resolver, stored, stored_bodies,
};
use frontline_tests::{WAIT, eventually, twilio};

const CONVERSATION: &str = "CH00000000000000000000000000000099";

#[tokio::test]
async fn no_resolver_takes_the_fallback_at_once() {
    let nats = NatsServer::start();
    let ingress = ready_ingress(&nats.url(), |config| config.pre_event_timeout_ms = 4_000).await;
    let started = Instant::now();
    let answer = ingress
        .client
        .post(&twilio::conversation_add("+14155550101"))
        .await;
    let elapsed = started.elapsed();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "{}");
    // "At once": well before the 4 s timeout (no responders is the server's immediate answer).
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    let metrics = admin_get(ingress.admin, "/metrics").await.text();
    assert_eq!(
        metric(
            &metrics,
            r#"frontline_ingress_requests_total{event_type="onConversationAdd",outcome="fallback"}"#
        ),
        1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_slow_resolver_takes_the_fallback_at_the_timeout() {
    let nats = NatsServer::start();
    let _silent = responder(&nats.url(), Duration::ZERO, |_| None).await;
    let ingress = ready_ingress(&nats.url(), |config| config.pre_event_timeout_ms = 300).await;
    let started = Instant::now();
    let answer = ingress
        .client
        .post(&twilio::conversation_add("+14155550101"))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "{}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "answered before the timeout ({elapsed:?})"
    );
    // PRE_EVENT_TIMEOUT_MS is what ends the wait: the fallback comes at the timeout plus a
    // margin for a loaded machine, far inside Twilio's 5 s.
    assert!(
        elapsed < Duration::from_millis(300 + 1_200),
        "the fallback came {elapsed:?} after the request, long after the 300 ms timeout"
    );
}

#[tokio::test]
async fn the_reject_fallback_answers_503() {
    let nats = NatsServer::start();
    let ingress = ready_ingress(&nats.url(), |config| {
        config.pre_event_fallback = Fallback::Reject
    })
    .await;
    let answer = ingress
        .client
        .post(&twilio::conversation_add("+14155550101"))
        .await;
    assert_eq!(answer.status, 503);
}

#[tokio::test]
async fn a_garbage_reply_takes_the_fallback_and_an_error_reply_too() {
    for reply in [
        b"<html>oops</html>".to_vec(),
        PreReply::Error {
            message: "directory down".into(),
        }
        .to_vec(),
    ] {
        let nats = NatsServer::start();
        let _broken = responder(&nats.url(), Duration::ZERO, move |_| Some(reply.clone())).await;
        let ingress = ready_ingress(&nats.url(), |config| {
            config.pre_event_fallback = Fallback::Reject
        })
        .await;
        assert_eq!(
            ingress
                .client
                .post(&twilio::conversation_add("+14155550101"))
                .await
                .status,
            503
        );
        let metrics = admin_get(ingress.admin, "/metrics").await.text();
        assert_eq!(
            metric(
                &metrics,
                r#"frontline_ingress_requests_total{event_type="onConversationAdd",outcome="fallback"}"#
            ),
            1.0,
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn a_resolver_reject_becomes_403() {
    let nats = NatsServer::start();
    let reject = PreReply::Reject {
        reason: "blocked sender".into(),
    }
    .to_vec();
    let _rejecting = responder(&nats.url(), Duration::ZERO, move |_| Some(reject.clone())).await;
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    let answer = ingress
        .client
        .post(&twilio::event(
            "onMessageAdd",
            &[("ConversationSid", CONVERSATION)],
        ))
        .await;
    assert_eq!(answer.status, 403);
    assert!(answer.body.is_empty());
}

#[tokio::test]
async fn nats_down_at_start_then_back_without_a_restart() {
    let port = free_port();
    let mut nats = NatsServer::not_started(port);
    let ingress = spawn_ingress(ingress_config(&nats.url())).await;
    let resolver = spawn_resolver(resolver_config(&nats.url())).await;

    let readyz = admin_get(ingress.admin, "/readyz").await;
    assert_eq!(readyz.status, 503);
    assert!(readyz.text().contains("NATS"), "{}", readyz.text());
    assert_eq!(admin_get(resolver.admin, "/readyz").await.status, 503);
    assert_eq!(admin_get(ingress.admin, "/livez").await.status, 200);
    let pre = ingress
        .client
        .post(&twilio::conversation_add("+14155550101"))
        .await;
    assert_eq!((pre.status.as_u16(), pre.text().as_str()), (200, "{}"));
    let post = ingress
        .client
        .post(&twilio::message_added(CONVERSATION, 1, "while down"))
        .await;
    assert_eq!(post.status, 503);

    nats.restart();
    ingress.wait_ready().await;
    resolver.wait_ready().await;
    let post = ingress
        .client
        .post(&twilio::message_added(CONVERSATION, 2, "after"))
        .await;
    assert_eq!(post.status, 200);
    let pre = ingress
        .client
        .post(&twilio::conversation_add("+14155550101"))
        .await;
    assert_eq!(pre.json()["friendly_name"], "Bobby Shaftoe");
    let messages = stored(&nats.url(), subject::DEFAULT_STREAM).await;
    let bodies: Vec<_> = messages
        .iter()
        .map(|m| m.envelope.params.get("Body").unwrap().to_owned())
        .collect();
    assert_eq!(bodies, ["after"]);
    ingress.stop().await;
    resolver.stop().await;
}

#[tokio::test]
async fn nats_restart_while_running_recovers_and_loses_nothing_acknowledged() {
    let mut nats = NatsServer::start();
    let ingress = spawn_ingress(ingress_config(&nats.url())).await;
    let resolver = spawn_resolver(resolver_config(&nats.url())).await;
    ingress.wait_ready().await;
    resolver.wait_ready().await;
    let mut acknowledged = Vec::new();
    let mut send = async |index: u32| {
        let answer = ingress
            .client
            .post(&twilio::message_added(
                CONVERSATION,
                index,
                &format!("m{index}"),
            ))
            .await;
        assert!(
            answer.status == 200 || answer.status == 503,
            "{}",
            answer.status
        );
        if answer.status == 200 {
            acknowledged.push(format!("m{index}"));
        }
    };
    for index in 0..5 {
        send(index).await;
    }
    nats.stop();
    for index in 5..10 {
        send(index).await;
    }
    let during = ingress
        .client
        .post(&twilio::conversation_add("+14155550101"))
        .await;
    assert_eq!(
        (during.status.as_u16(), during.text().as_str()),
        (200, "{}"),
        "the fallback while NATS is down"
    );
    nats.restart();
    ingress.wait_ready().await;
    for index in 10..15 {
        send(index).await;
    }
    let messages = stored(&nats.url(), subject::DEFAULT_STREAM).await;
    let bodies: Vec<String> = messages
        .iter()
        .map(|m| m.envelope.params.get("Body").unwrap().to_owned())
        .collect();
    for body in &acknowledged {
        assert!(
            bodies.contains(body),
            "{body} was answered 200 but is not stored"
        );
    }
    assert!(
        acknowledged.len() >= 10,
        "before and after must be stored: {acknowledged:?}"
    );
    resolver.wait_ready().await;
    let after = eventually(WAIT, "a resolver answer after the restart", || async {
        let answer = ingress
            .client
            .post(&twilio::conversation_add("+14155550101"))
            .await;
        (answer.text() != "{}").then_some(answer)
    })
    .await;
    assert_eq!(after.json()["friendly_name"], "Bobby Shaftoe");
    ingress.stop().await;
    resolver.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_then_refuses_connections() {
    let nats = NatsServer::start();
    let modify = PreReply::Modify {
        fields: Modification {
            friendly_name: Some("late".into()),
            ..Modification::default()
        },
    };
    let modify = modify.to_vec();
    let _slow = responder(&nats.url(), Duration::from_millis(700), move |_| {
        Some(modify.clone())
    })
    .await;
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    let client = ingress.client.clone();
    let addr = ingress.addr;
    let in_flight =
        tokio::spawn(async move { client.post(&twilio::conversation_add("+14155550101")).await });
    let post_client = ingress.client.clone();
    // The request is in the ingress's hands before the signal.
    eventually(WAIT, "the request in flight", || async {
        let text = admin_get(ingress.admin, "/metrics").await.text();
        (metric(&text, "frontline_ingress_in_flight_requests") >= 1.0).then_some(())
    })
    .await;
    let stopping = tokio::spawn(ingress.stop());
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["friendly_name"], "late");
    stopping.await.unwrap();
    let refused = post_client
        .try_send(http::Method::GET, "/livez", &[], bytes::Bytes::new())
        .await;
    assert!(
        refused.is_err(),
        "the listener must be closed after shutdown ({addr})"
    );
}

#[tokio::test]
async fn a_resolver_skips_requests_past_their_deadline() {
    let nats = NatsServer::start();
    let resolver = spawn_resolver(resolver_config(&nats.url())).await;
    resolver.wait_ready().await;
    let client = connect(&nats.url()).await;
    let envelope = br#"{"event_type":"onConversationAdd","account_sid":null,"received_at":"2026-11-25T10:00:00.000Z","idempotency_token":null,"params":{}}"#;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Frontline-Deadline", "1000");
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(envelope.to_vec().into())
        .timeout(Some(Duration::from_millis(500)));
    let expired = client
        .send_request("frontline.pre.onConversationAdd._", request)
        .await;
    assert_eq!(
        expired.unwrap_err().kind(),
        async_nats::RequestErrorKind::TimedOut
    );
    let mut headers = async_nats::HeaderMap::new();
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 5_000;
    headers.insert("Frontline-Deadline", future.to_string().as_str());
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(envelope.to_vec().into());
    let answered = client
        .send_request("frontline.pre.onConversationAdd._", request)
        .await
        .unwrap();
    assert_eq!(
        PreReply::from_slice(&answered.payload).unwrap(),
        PreReply::Accept
    );
    let metrics = admin_get(resolver.admin, "/metrics").await.text();
    assert_eq!(
        metric(
            &metrics,
            r#"frontline_resolver_messages_total{event_type="onConversationAdd",outcome="expired"}"#
        ),
        1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_deleted_stream_is_created_again() {
    let nats = NatsServer::start();
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    assert_eq!(
        ingress
            .client
            .post(&twilio::message_added(CONVERSATION, 1, "before"))
            .await
            .status,
        200
    );
    let js = async_nats::jetstream::new(connect(&nats.url()).await);
    js.delete_stream(subject::DEFAULT_STREAM).await.unwrap();
    // The publish finds no stream, which makes the ingress create it again; the post-event
    // keeps trying within PUBLISH_BUDGET_MS and is stored: a 200 only once it is.
    let answer = ingress
        .client
        .post(&twilio::message_added(CONVERSATION, 2, "kept"))
        .await;
    assert_eq!(answer.status, 200);
    let bodies: Vec<String> = stored_bodies(&nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(
        bodies,
        ["kept"],
        "the new stream holds what was answered 200"
    );
    ingress.wait_ready().await;
}

/// What readiness rests on: once `round_trip` returns, the server routes to a subscription just
/// made, so a request from another connection never meets "no responders". (`Client::flush`
/// alone does not promise that: it only writes to the socket.)
#[tokio::test]
async fn a_subscription_is_routable_once_round_trip_returns() {
    use futures::StreamExt;
    let nats = NatsServer::start();
    let (listener, asker) = (connect(&nats.url()).await, connect(&nats.url()).await);
    for n in 0..200 {
        let subject = format!("probe.{n}");
        let mut subscriber = listener.subscribe(subject.clone()).await.unwrap();
        frontline_runtime::nats::round_trip(&listener)
            .await
            .unwrap();
        let answering = listener.clone();
        let answerer = tokio::spawn(async move {
            if let Some(message) = subscriber.next().await {
                let _ = answering
                    .publish(message.reply.unwrap(), "pong".into())
                    .await;
            }
        });
        let answer = asker.request(subject, "ping".into()).await;
        answerer.abort();
        assert_eq!(
            answer
                .expect("the subscription is routable")
                .payload
                .as_ref(),
            b"pong",
            "probe {n}"
        );
    }
}

#[tokio::test]
async fn nats_back_without_its_store_gets_its_stream_and_consumer_again() {
    use frontline_tests::fake_twilio::FakeTwilio;
    use frontline_tests::stack::resolver_config_with_twilio;

    let mut nats = NatsServer::start();
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    let resolver = spawn_resolver(resolver_config_with_twilio(&nats.url(), &fake)).await;
    resolver.wait_ready().await;
    let post = async |body: &str| {
        ingress
            .client
            .post(&twilio::message_added(CONVERSATION, 1, body))
            .await
    };
    assert_eq!(post("before").await.status, 200);

    // The server comes back on the same port with an empty disk: no stream, no consumer.
    nats.restart_without_store();
    let after = eventually(
        WAIT,
        "a post-event stored after the store was lost",
        || async {
            let answer = post("after").await;
            // 503 until the stream exists again, never a 200 for an unstored event.
            assert!(
                answer.status == 200 || answer.status == 503,
                "{}",
                answer.status
            );
            (answer.status == 200).then_some(answer)
        },
    )
    .await;
    assert_eq!(after.status, 200);
    let bodies: Vec<String> = stored_bodies(&nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(
        bodies,
        ["after"],
        "only what was sent after the loss is in the new stream"
    );

    // The resolvers' consumer is made again too: a participant is still enriched.
    fake.add_participant(CONVERSATION, "MB01", "{}");
    let added = twilio::participant_added(CONVERSATION, "MB01", "+14155550101");
    assert_eq!(ingress.client.post(&added).await.status, 200);
    eventually(
        WAIT,
        "the participant enriched after the store was lost",
        || async {
            fake.attributes(CONVERSATION, "MB01")
                .filter(|attributes| attributes.contains("1001"))
        },
    )
    .await;
}

#[tokio::test]
async fn a_puback_that_never_comes_is_a_503_when_the_budget_runs_out() {
    let nats = NatsServer::start();
    let ingress = ready_ingress(&nats.url(), |config| {
        config.publish_timeout_ms = 500;
        config.publish_budget_ms = 1_200;
    })
    .await;
    // A frozen server keeps the connection open and answers nothing: the PubAck never comes.
    nats.pause();
    let started = Instant::now();
    let answer = ingress
        .client
        .post(&twilio::message_added(CONVERSATION, 1, "frozen"))
        .await;
    let elapsed = started.elapsed();
    nats.resume();
    assert_eq!(answer.status, 503);
    assert!(
        elapsed >= Duration::from_millis(1_200) && elapsed < Duration::from_millis(3_000),
        "answered after {elapsed:?}, not when the 1.2 s budget ran out"
    );
    let metrics = admin_get(ingress.admin, "/metrics").await.text();
    assert_eq!(
        metric(
            &metrics,
            r#"frontline_ingress_requests_total{event_type="onMessageAdded",outcome="publish_failed"}"#
        ),
        1.0,
        "{metrics}"
    );
    // More than one try (500 ms each, within 1.2 s), refused as timed out.
    assert!(
        metric(&metrics, "frontline_ingress_publish_retries_total") >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            r#"frontline_ingress_publish_refusals_total{cause="timed_out"}"#
        ),
        1.0
    );
    // And once the server answers again, so does the ingress.
    eventually(WAIT, "a stored post-event after the pause", || async {
        let answer = ingress
            .client
            .post(&twilio::message_added(CONVERSATION, 2, "thawed"))
            .await;
        (answer.status == 200).then_some(())
    })
    .await;
}

/// A nats-server restarted while post-events flow, down 2 s: every post-event waits inside the
/// budget and is stored once (no 503, nothing twice); down 8 s (no spool): 503s, each only once
/// the budget has run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_events_wait_out_a_short_outage_and_refuse_only_after_the_budget() {
    let mut nats = NatsServer::start();
    let ingress = ready_ingress(&nats.url(), |config| config.publish_budget_ms = 4_000).await;
    let client = ingress.client.clone();
    let post = |index: u32| {
        let client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = client
                .post(&twilio::message_added(
                    CONVERSATION,
                    index,
                    &format!("m{index}"),
                ))
                .await;
            (index, answer.status.as_u16(), started.elapsed())
        })
    };
    nats.stop();
    let during: Vec<_> = (0..10).map(post).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.restart();
    let mut answered = Vec::new();
    for request in during {
        let (index, status, _) = request.await.unwrap();
        assert_eq!(status, 200, "m{index} was refused during a 2 s outage");
        answered.push(format!("m{index}"));
    }
    let mut bodies: Vec<String> = stored_bodies(&nats.url(), subject::DEFAULT_STREAM).await;
    bodies.sort();
    answered.sort();
    assert_eq!(bodies, answered, "every 200 stored, once");

    // A long outage: refused, but only once the budget is spent.
    nats.stop();
    let long: Vec<_> = (100..104).map(post).collect();
    for request in long {
        let (index, status, elapsed) = request.await.unwrap();
        assert_eq!(status, 503, "m{index}");
        assert!(
            elapsed >= Duration::from_millis(3_900) && elapsed < Duration::from_secs(5),
            "m{index} refused after {elapsed:?}, not at the 4 s budget"
        );
    }
    nats.restart();
}

/// Shutdown while a post-event waits out the publish budget (NATS down): the request is still
/// answered (503 once the budget is spent, never a dropped connection), and the ingress stops
/// well within SHUTDOWN_GRACE_SECS.
#[tokio::test]
async fn shutdown_waits_for_a_post_event_inside_its_budget() {
    let mut nats = NatsServer::start();
    let ingress = ready_ingress(&nats.url(), |config| config.publish_budget_ms = 1_500).await;
    nats.stop();
    let client = ingress.client.clone();
    let waiting = tokio::spawn(async move {
        client
            .try_send_post(&twilio::message_added(CONVERSATION, 1, "waiting"))
            .await
    });
    eventually(WAIT, "the post-event in flight", || async {
        let text = admin_get(ingress.admin, "/metrics").await.text();
        (metric(&text, "frontline_ingress_in_flight_requests") >= 1.0).then_some(())
    })
    .await;
    let started = Instant::now();
    ingress.stop().await;
    let stopped_after = started.elapsed();
    let answer = waiting.await.unwrap().expect("answered, not dropped");
    assert_eq!(answer.status, 503);
    assert!(
        stopped_after < Duration::from_secs(10),
        "stopped after {stopped_after:?}"
    );
}
