//! Attacks on the pipeline, each performed against the real ingress and resolver on a real
//! nats-server: what an unsigned header, a replayed webhook, a rogue NATS client or a poisoned
//! message can and cannot do.

use std::time::Duration;

use async_nats::jetstream;
use frontline_shared::subject;
use frontline_tests::http::{admin_get, metric};
use frontline_tests::nats::NatsServer;
use frontline_tests::stack::{
    Stack, connect, ready_ingress, resolver_config, spawn_resolver, stored,
};
use frontline_tests::{WAIT, eventually, twilio};

const CONVERSATION: &str = "CH00000000000000000000000000000666";

/// One signed webhook, captured, replayed with a new `I-Twilio-Idempotency-Token` each time
/// (which the signature does not cover): stored once, however many tokens.
#[tokio::test]
async fn a_replayed_webhook_with_new_tokens_is_stored_once() {
    let stack = Stack::start().await;
    let captured = twilio::message_added(CONVERSATION, 1, "captured");
    let junk = "j".repeat(10_000);
    for replay in 0..300 {
        let token = if replay % 3 == 0 {
            junk.clone()
        } else {
            format!("token-{replay}")
        };
        let answer = stack
            .client()
            .post_with(&captured, &[("I-Twilio-Idempotency-Token", &token)])
            .await;
        assert_eq!(answer.status, 200, "replay {replay}");
    }
    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(
        messages.len(),
        1,
        "a replay with a new token was stored again"
    );
    assert_eq!(
        messages[0].envelope.idempotency_token, None,
        "the first token was junk"
    );
    let metrics = admin_get(stack.ingress.admin, "/metrics").await.text();
    assert_eq!(
        metric(
            &metrics,
            r#"frontline_ingress_requests_total{event_type="onMessageAdded",outcome="duplicate"}"#
        ),
        299.0
    );
}

/// A token that does not look like Twilio's never enters the envelope; one that does, does.
#[tokio::test]
async fn only_a_well_formed_idempotency_token_enters_the_envelope() {
    let stack = Stack::start().await;
    for (body, token) in [
        ("dots", "a.b.c"),
        ("wildcard", "a*"),
        ("long", &"x".repeat(65)),
        ("spaces", "a b"),
        ("good", "Idem_token-123"),
    ] {
        let params = twilio::message_added(CONVERSATION, 2, body);
        let answer = stack
            .client()
            .post_with(&params, &[("I-Twilio-Idempotency-Token", token)])
            .await;
        assert_eq!(answer.status, 200);
    }
    let tokens: Vec<(String, Option<String>)> = stored(&stack.nats.url(), subject::DEFAULT_STREAM)
        .await
        .into_iter()
        .map(|m| {
            (
                m.envelope.params.get("Body").unwrap().to_owned(),
                m.envelope.idempotency_token,
            )
        })
        .collect();
    let expected: Vec<(String, Option<String>)> = [
        ("dots", None),
        ("wildcard", None),
        ("long", None),
        ("spaces", None),
        ("good", Some("Idem_token-123")),
    ]
    .into_iter()
    .map(|(b, t)| (b.to_owned(), t.map(str::to_owned)))
    .collect();
    assert_eq!(tokens, expected);
}

/// Exact copies of a signed parameter appended to the form keep the signature valid (Twilio
/// signs each repeat once): they must not change what is stored.
#[tokio::test]
async fn exact_repeats_appended_to_a_signed_form_change_nothing() {
    let stack = Stack::start().await;
    let params = twilio::message_added(CONVERSATION, 3, "original");
    let mut padded = params.clone();
    for _ in 0..50 {
        padded.push(("Body".to_owned(), "original".to_owned()));
    }
    // Signed over the original parameters: the server accepts it, as Twilio's validators do.
    let signature = twilio::sign(
        twilio::AUTH_TOKEN,
        &format!(
            "{}{}",
            twilio::PUBLIC_URL,
            frontline_tests::http::WEBHOOK_PATH
        ),
        &params,
    );
    let answer = stack
        .client()
        .post_form(
            frontline_tests::http::WEBHOOK_PATH,
            &padded,
            &[("X-Twilio-Signature", &signature)],
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(stack.client().post(&params).await.status, 200);
    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(
        messages.len(),
        1,
        "the padded form was stored beside the original"
    );
    assert_eq!(messages[0].envelope.params.get_all("Body").count(), 1);
}

/// The stream is bounded: when full it refuses (503), never answers 200 for an unstored event,
/// and it carries the limits of SPEC.md.
#[tokio::test]
async fn a_full_stream_refuses_and_nothing_unstored_is_acknowledged() {
    let stack = Stack::start_with(|config| {
        config.stream_max_bytes = 4_096;
        config.stream_duplicate_window = Duration::from_secs(30);
    })
    .await;
    let mut acknowledged = 0;
    let mut refused = 0;
    for index in 0..40 {
        let answer = stack
            .client()
            .post(&twilio::message_added(
                CONVERSATION,
                index,
                &"b".repeat(200),
            ))
            .await;
        match answer.status.as_u16() {
            200 => acknowledged += 1,
            503 => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "a 4 KiB stream took 40 events of ~1 KiB");
    let stored = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(
        stored.len(),
        acknowledged,
        "every 200 is stored, nothing else"
    );
    let js = jetstream::new(connect(&stack.nats.url()).await);
    let mut stream = js.get_stream(subject::DEFAULT_STREAM).await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.max_bytes, 4_096);
    assert_eq!(config.max_message_size, 256 * 1024);
    assert_eq!(config.discard, jetstream::stream::DiscardPolicy::New);
    assert_eq!(config.duplicate_window, Duration::from_secs(30));
    let metrics = admin_get(stack.ingress.admin, "/metrics").await.text();
    assert_eq!(
        metric(&metrics, "frontline_ingress_stream_max_bytes"),
        4_096.0
    );
}

/// Two different pre-events carrying the same idempotency token: each gets its own answer.
/// (Keyed by the token, the cache served the first one's answer to the second.)
#[tokio::test]
async fn one_request_s_cached_answer_is_never_served_to_another() {
    let stack = Stack::start().await;
    let js = jetstream::new(connect(&stack.nats.url()).await);
    let token = [("I-Twilio-Idempotency-Token", "shared-token")];
    let first = stack
        .client()
        .post_with(&twilio::conversation_add("+14155550101"), &token)
        .await;
    assert_eq!(first.json()["friendly_name"], "Bobby Shaftoe");
    // The first answer is in the cache before the other request comes.
    eventually(WAIT, "the first answer cached", || async {
        let mut stream = js.get_stream("KV_frontline-pre-answers").await.ok()?;
        (stream.info().await.ok()?.state.messages > 0).then_some(())
    })
    .await;
    let mut other = twilio::conversation_add("+19995550123");
    for (name, value) in &mut other {
        if name == "RetryCount" {
            *value = "1".to_owned();
        }
    }
    let second = stack.client().post_with(&other, &token).await;
    assert_eq!(second.json()["friendly_name"], "+19995550123");
}

const LEAST_PRIVILEGE: &str = r#"
no_auth_user: ingress
accounts {
  APP {
    jetstream: enabled
    users: [
      { user: ingress, password: ingress }
      { user: attacker, password: attacker }
      { user: resolver, password: resolver, permissions: {
          subscribe: ["frontline.pre.>"],
          publish: { deny: [">"] },
          allow_responses: true
      } }
    ]
  }
}
"#;

/// A request on the pre-event subjects naming `$JS.API.STREAM.PURGE.FRONTLINE_EVENTS` as its
/// reply subject: a resolver that answered it would purge the stream, with its own permissions
/// (a response permission covers whatever reply subject the requester names).
#[tokio::test]
async fn a_request_naming_a_foreign_reply_subject_is_dropped_not_answered() {
    let nats = NatsServer::start_with_config(LEAST_PRIVILEGE);
    let login = |args: &mut frontline_runtime::nats::NatsArgs, user: &str| {
        args.user = Some(user.to_owned());
        args.password = Some(frontline_runtime::secret::Secret::new(user));
    };
    let ingress = ready_ingress(&nats.url(), |config| login(&mut config.nats, "ingress")).await;
    let mut config = resolver_config(&nats.url());
    login(&mut config.nats, "resolver");
    let resolver = spawn_resolver(config).await;
    resolver.wait_ready().await;
    let event = twilio::message_added(CONVERSATION, 1, "keep me");
    assert_eq!(ingress.client.post(&event).await.status, 200);

    let attacker =
        async_nats::ConnectOptions::with_user_and_password("attacker".into(), "attacker".into())
            .connect(nats.url())
            .await
            .unwrap();
    let envelope = frontline_shared::Envelope {
        event_type: "onConversationAdd".into(),
        account_sid: None,
        received_at: String::new(),
        idempotency_token: None,
        params: frontline_shared::Params::from_pairs([("EventType", "onConversationAdd")]),
    };
    for reply in [
        "$JS.API.STREAM.PURGE.FRONTLINE_EVENTS",
        "$JS.API.STREAM.DELETE.FRONTLINE_EVENTS",
        "frontline.post.onMessageAdded.forged",
    ] {
        attacker
            .publish_with_reply(
                "frontline.pre.onConversationAdd._",
                reply,
                envelope.to_vec().into(),
            )
            .await
            .unwrap();
    }
    attacker.flush().await.unwrap();
    let metrics = eventually(WAIT, "the foreign replies counted", || async {
        let text = admin_get(resolver.admin, "/metrics").await.text();
        (metric(&text, "frontline_resolver_foreign_reply_subjects_total") >= 3.0).then_some(text)
    })
    .await;
    assert_eq!(
        metric(&metrics, "frontline_resolver_foreign_reply_subjects_total"),
        3.0
    );
    let messages = stored(&nats.url(), subject::DEFAULT_STREAM).await;
    let bodies: Vec<&str> = messages
        .iter()
        .map(|m| m.envelope.params.get("Body").unwrap_or("?"))
        .collect();
    assert_eq!(bodies, ["keep me"], "the stream was purged or written to");
    // A genuine request is still answered.
    let answer = ingress
        .client
        .post(&twilio::conversation_add("+14155550101"))
        .await;
    assert_eq!(answer.json()["friendly_name"], "Bobby Shaftoe");
}

/// Messages put on the post-event subjects by a rogue NATS client, with headers that would make
/// a copied dead letter refuse itself forever (`Nats-Expected-Stream` names the event stream):
/// each is dead-lettered once, without the poison, and the consumer goes on to real events.
#[tokio::test]
async fn poisoned_headers_do_not_follow_a_dead_letter() {
    use frontline_tests::fake_twilio::FakeTwilio;
    use frontline_tests::stack::{participant_consumer_info, resolver_config_with_twilio};

    let nats = NatsServer::start();
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    let resolver = spawn_resolver(resolver_config_with_twilio(&nats.url(), &fake)).await;
    resolver.wait_ready().await;
    let js = jetstream::new(connect(&nats.url()).await);
    for poison in 0..20 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Expected-Stream", subject::DEFAULT_STREAM);
        headers.insert("Twilio-Event-Type", "onParticipantAdded");
        js.publish_with_headers(
            format!("frontline.post.onParticipantAdded.POISON{poison}"),
            headers,
            "not an envelope".into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let dead = eventually(WAIT, "twenty dead letters", || async {
        let mut stream = js.get_stream(subject::DLQ_STREAM).await.ok()?;
        (stream.info().await.ok()?.state.messages == 20).then_some(())
    })
    .await;
    let () = dead;
    let letters = {
        let mut stream = js.get_stream(subject::DLQ_STREAM).await.unwrap();
        let first = stream.info().await.unwrap().state.first_sequence;
        stream.get_raw_message(first).await.unwrap()
    };
    assert!(letters.headers.get("Nats-Expected-Stream").is_none());
    assert_eq!(
        letters
            .headers
            .get(frontline_shared::headers::ORIGINAL_SUBJECT)
            .map(|v| v.as_str()),
        Some("frontline.post.onParticipantAdded.POISON0")
    );
    // And the consumer is free: a real event is still handled, nothing left pending.
    fake.add_participant(CONVERSATION, "MB66", "{}");
    let added = twilio::participant_added(CONVERSATION, "MB66", "+14155550101");
    assert_eq!(ingress.client.post(&added).await.status, 200);
    eventually(WAIT, "the real event handled", || async {
        fake.attributes(CONVERSATION, "MB66")
            .filter(|attributes| attributes.contains("1001"))
    })
    .await;
    let info = participant_consumer_info(&nats.url()).await;
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
}

/// `deploy/local.sh` listens on loopback by default, and refuses to expose the ingress with the
/// development token that this repository publishes.
#[test]
fn local_sh_never_exposes_the_published_token() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.contains(r#"INGRESS_LISTEN="${INGRESS_LISTEN:-127.0.0.1:8080}""#),
        "the default listener is not loopback"
    );
    let refused = std::process::Command::new("bash")
        .arg(&script)
        .env("INGRESS_LISTEN", "0.0.0.0:8080")
        .env_remove("TWILIO_AUTH_TOKEN")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("development token"), "{said}");
}

fn login(args: &mut frontline_runtime::nats::NatsArgs, user: &str) {
    args.user = Some(user.to_owned());
    args.password = Some(frontline_runtime::secret::Secret::new(format!("{user}-pw")));
}

/// Every path of the pipeline works with each binary logged in as its shipped user, and what
/// those users must not do is refused by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_nats_permissions_allow_every_path_and_nothing_more() {
    use frontline_tests::fake_twilio::{Failure, FakeTwilio};
    use frontline_tests::stack::{example_directory, resolver_config_with_twilio};

    let nats = NatsServer::start_with_config(&frontline_tests::nats::shipped_accounts());
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    let ingress = ready_ingress(&nats.url(), |config| login(&mut config.nats, "ingress")).await;
    let js = jetstream::new(connect(&nats.url()).await);
    frontline_resolver::directory::kv::import(&js, "customers", &example_directory())
        .await
        .unwrap();
    let mut config = resolver_config_with_twilio(&nats.url(), &fake);
    login(&mut config.nats, "resolver");
    config.customer_directory = "nats-kv:customers".parse().unwrap();
    let resolver = spawn_resolver(config).await;
    resolver.wait_ready().await;

    // Pre-events: answered from the KV directory; the answer cached by the ingress.
    let answer = ingress
        .client
        .post_with(
            &twilio::conversation_add("+14155550101"),
            &[("I-Twilio-Idempotency-Token", "perm-1")],
        )
        .await;
    assert_eq!(answer.json()["friendly_name"], "Bobby Shaftoe");
    eventually(WAIT, "an answer in the cache", || async {
        let mut stream = js.get_stream("KV_frontline-pre-answers").await.ok()?;
        (stream.info().await.ok()?.state.messages > 0).then_some(())
    })
    .await;
    // Post-events: stored, consumed, acknowledged; a permanent failure dead-lettered.
    fake.add_participant(CONVERSATION, "MB01", "{}");
    fake.add_participant(CONVERSATION, "MB02", "{}");
    let added = |participant| twilio::participant_added(CONVERSATION, participant, "+14155550101");
    assert_eq!(ingress.client.post(&added("MB01")).await.status, 200);
    eventually(WAIT, "the participant enriched", || async {
        fake.attributes(CONVERSATION, "MB01")
            .filter(|attributes| attributes.contains("1001"))
    })
    .await;
    fake.fail_next(1, Failure::Status(400, None));
    assert_eq!(ingress.client.post(&added("MB02")).await.status, 200);
    eventually(WAIT, "a dead letter", || async {
        let mut stream = js.get_stream(subject::DLQ_STREAM).await.ok()?;
        (stream.info().await.ok()?.state.messages == 1).then_some(())
    })
    .await;
    let events_before = stored(&nats.url(), subject::DEFAULT_STREAM).await.len();

    // The resolver's user cannot write events, purge or delete the stream.
    let url = nats.url();
    let as_user = |user: &'static str| {
        let url = url.clone();
        async move {
            async_nats::ConnectOptions::with_user_and_password(user.into(), format!("{user}-pw"))
                .connect(url)
                .await
                .unwrap()
        }
    };
    let rogue_resolver = as_user("resolver").await;
    rogue_resolver
        .publish("frontline.post.onMessageAdded.CH1", "forged".into())
        .await
        .unwrap();
    for api in [
        "$JS.API.STREAM.PURGE.FRONTLINE_EVENTS",
        "$JS.API.STREAM.DELETE.FRONTLINE_EVENTS",
    ] {
        let refused = tokio::time::timeout(
            Duration::from_secs(2),
            rogue_resolver.request(api, "".into()),
        )
        .await;
        assert!(!matches!(refused, Ok(Ok(_))), "{api} was answered");
    }
    rogue_resolver.flush().await.unwrap();
    // The ingress's user cannot listen in on pre-events (it would see every webhook).
    let rogue_ingress = as_user("ingress").await;
    let mut listening = rogue_ingress.subscribe("frontline.pre.>").await.unwrap();
    rogue_ingress.flush().await.unwrap();
    let answer = ingress
        .client
        .post(&twilio::conversation_add("+14155550101"))
        .await;
    assert_eq!(answer.json()["friendly_name"], "Bobby Shaftoe");
    let overheard = tokio::time::timeout(
        Duration::from_millis(500),
        futures::StreamExt::next(&mut listening),
    )
    .await;
    assert!(
        !matches!(overheard, Ok(Some(_))),
        "the ingress's user received a pre-event"
    );
    assert_eq!(
        stored(&nats.url(), subject::DEFAULT_STREAM).await.len(),
        events_before,
        "the stream was written to, purged or deleted"
    );
}
