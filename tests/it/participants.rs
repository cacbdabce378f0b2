//! Frontline's onParticipantAdded rule end to end: the stored event is consumed by the resolvers'
//! durable consumer, which reads and updates the participant through the (fake) Twilio REST API.

use std::time::Duration;

use frontline_shared::{headers, subject};
use frontline_tests::fake_twilio::{Failure, FakeTwilio};
use frontline_tests::http::{admin_get, metric};
use frontline_tests::nats::NatsServer;
use frontline_tests::stack::{
    Ingress, Resolver, connect, participant_consumer_info, ready_ingress,
    resolver_config_with_twilio, spawn_isolated_resolver, spawn_resolver, stored,
};
use frontline_tests::{WAIT, eventually, twilio};
use http::Method;
use serde_json::{Value, json};

const CONVERSATION: &str = "CH00000000000000000000000000000123";
const BOBBY: &str = "+14155550101";

struct World {
    nats: NatsServer,
    fake: FakeTwilio,
    ingress: Ingress,
}

async fn world() -> World {
    let nats = NatsServer::start();
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    World {
        nats,
        fake,
        ingress,
    }
}

impl World {
    async fn resolver(&self) -> Resolver {
        self.resolver_with(|_| {}).await
    }

    async fn resolver_with(
        &self,
        adjust: impl FnOnce(&mut frontline_resolver::Config),
    ) -> Resolver {
        let mut config = resolver_config_with_twilio(&self.nats.url(), &self.fake);
        adjust(&mut config);
        let resolver = spawn_resolver(config).await;
        resolver.wait_ready().await;
        resolver
    }

    async fn participant_added(&self, participant: &str, address: &str) {
        let answer = self
            .ingress
            .client
            .post(&twilio::participant_added(
                CONVERSATION,
                participant,
                address,
            ))
            .await;
        assert_eq!(answer.status, 200);
    }

    async fn enriched(&self, participant: &str) -> Value {
        eventually(
            WAIT,
            "the participant's attributes to be updated",
            || async {
                let attributes: Value =
                    serde_json::from_str(&self.fake.attributes(CONVERSATION, participant)?).ok()?;
                attributes
                    .get("customer_id")
                    .is_some()
                    .then_some(attributes)
            },
        )
        .await
    }
}

async fn outcome(resolver: &Resolver, outcome: &str) -> f64 {
    let text = admin_get(resolver.admin, "/metrics").await.text();
    metric(
        &text,
        &format!(
            r#"frontline_resolver_messages_total{{event_type="onParticipantAdded",outcome="{outcome}"}}"#
        ),
    )
}

async fn wait_outcome(resolver: &Resolver, name: &str, count: f64) {
    eventually(WAIT, &format!("{count} {name} outcomes"), || async {
        (outcome(resolver, name).await >= count).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_customer_participant_gets_the_customer_attributes_existing_values_win() {
    let world = world().await;
    let resolver = world.resolver().await;
    world.fake.add_participant(
        CONVERSATION,
        "MB01",
        r#"{"display_name":"Bob (VIP)","team":"blue"}"#,
    );
    world.participant_added("MB01", BOBBY).await;
    let attributes = world.enriched("MB01").await;
    assert_eq!(
        attributes,
        json!({"customer_id": "1001", "display_name": "Bob (VIP)", "team": "blue",
               "avatar": "https://avatars.example.com/customers/1001.png"})
    );
    let requests = world.fake.requests();
    let methods: Vec<&Method> = requests.iter().map(|r| &r.method).collect();
    assert_eq!(methods, [&Method::GET, &Method::POST]);
    assert_eq!(
        requests[0].path,
        format!("/v1/Conversations/{CONVERSATION}/Participants/MB01")
    );
    assert!(
        requests[1].traceparent.is_some(),
        "the trace continues to Twilio"
    );
    wait_outcome(&resolver, "modified", 1.0).await;
}

#[tokio::test]
async fn chat_participants_and_unknown_customers_make_no_rest_call() {
    let world = world().await;
    let resolver = world.resolver().await;
    let mut chat = twilio::participant_added(CONVERSATION, "MB02", "");
    chat.retain(|(name, _)| !name.starts_with("MessagingBinding"));
    chat.push(("Identity".into(), "agent@example.com".into()));
    assert_eq!(world.ingress.client.post(&chat).await.status, 200);
    world.participant_added("MB03", "+19995550000").await;
    wait_outcome(&resolver, "skipped", 2.0).await;
    assert!(
        world.fake.requests().is_empty(),
        "{:?}",
        world.fake.requests()
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_the_update_lands() {
    let world = world().await;
    let resolver = world.resolver().await;
    world.fake.add_participant(CONVERSATION, "MB04", "{}");
    world.fake.fail_next(2, Failure::Status(500, None));
    world.participant_added("MB04", BOBBY).await;
    assert_eq!(world.enriched("MB04").await["customer_id"], "1001");
    assert_eq!(world.fake.count(&Method::GET), 3);
    assert_eq!(world.fake.count(&Method::POST), 1);
    assert_eq!(outcome(&resolver, "retried").await, 2.0);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let world = world().await;
    let resolver = world.resolver().await;
    world.fake.add_participant(CONVERSATION, "MB05", "{}");
    // Three seconds: longer than the first backoff step (one second), so only honouring
    // Twilio's Retry-After makes the redelivery wait this long.
    world.fake.fail_next(1, Failure::Status(429, Some(3)));
    world.participant_added("MB05", BOBBY).await;
    assert_eq!(
        world.enriched("MB05").await["display_name"],
        "Bobby Shaftoe"
    );
    assert_eq!(outcome(&resolver, "retried").await, 1.0);
    let waited = world.fake.intervals(&Method::GET)[0];
    assert!(
        waited >= Duration::from_millis(2_900),
        "redelivered after {waited:?}, before Retry-After: 3"
    );
}

#[tokio::test]
async fn a_retry_comes_back_after_its_delay_and_the_backoff_grows() {
    let world = world().await;
    let _resolver = world.resolver().await;
    world.fake.add_participant(CONVERSATION, "MB12", "{}");
    world.fake.fail_next(3, Failure::Status(500, None));
    world.participant_added("MB12", BOBBY).await;
    eventually(
        Duration::from_secs(20),
        "the update after three retries",
        || async {
            let attributes = world.fake.attributes(CONVERSATION, "MB12")?;
            attributes.contains("customer_id").then_some(())
        },
    )
    .await;
    // The documented backoff: one second, then doubling. Lower bounds are exact (a redelivery
    // never comes early); upper bounds are wide, for a loaded machine.
    let intervals = world.fake.intervals(&Method::GET);
    assert_eq!(intervals.len(), 3, "{intervals:?}");
    for (interval, expected) in intervals.iter().zip([1_000u64, 2_000, 4_000]) {
        assert!(
            *interval >= Duration::from_millis(expected - 100)
                && *interval < Duration::from_millis(expected + 2_500),
            "expected about {expected} ms, got {intervals:?}"
        );
    }
}

#[tokio::test]
async fn every_outcome_is_acknowledged_and_never_redelivered() {
    let world = world().await;
    let resolver = world.resolver_with(|config| config.ack_wait_secs = 1).await;
    // Dead-lettered (a permanent 400), then modified, then gone (no such participant).
    world.fake.add_participant(CONVERSATION, "MB13", "{}");
    world.fake.add_participant(CONVERSATION, "MB14", "{}");
    world.fake.fail_next(1, Failure::Status(400, None));
    world.participant_added("MB13", BOBBY).await;
    wait_outcome(&resolver, "dead_lettered", 1.0).await;
    world.participant_added("MB14", BOBBY).await;
    wait_outcome(&resolver, "modified", 1.0).await;
    world.participant_added("MB15", BOBBY).await;
    wait_outcome(&resolver, "gone", 1.0).await;
    let info = participant_consumer_info(&world.nats.url()).await;
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
    // Unacknowledged deliveries would come back after ACK_WAIT_SECS (1 s): wait out two.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let info = participant_consumer_info(&world.nats.url()).await;
    assert_eq!(
        (info.num_ack_pending, info.num_redelivered),
        (0, 0),
        "{info:?}"
    );
    assert_eq!(world.fake.count(&Method::GET), 3);
    assert_eq!(world.fake.count(&Method::POST), 1);
    for name in ["dead_lettered", "modified", "gone"] {
        assert_eq!(outcome(&resolver, name).await, 1.0, "{name}");
    }
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_stored_is_redelivered_never_dropped() {
    let world = world().await;
    let resolver = world.resolver().await;
    let js = async_nats::jetstream::new(connect(&world.nats.url()).await);
    let dlq = js
        .get_stream(subject::DLQ_STREAM)
        .await
        .expect("the resolver made the DLQ stream");
    let dlq_config = dlq.cached_info().config.clone();
    js.delete_stream(subject::DLQ_STREAM).await.unwrap();
    world.fake.add_participant(CONVERSATION, "MB16", "{}");
    world.fake.fail_next(2, Failure::Status(400, None));
    world.participant_added("MB16", BOBBY).await;
    // The dead letter has nowhere to go: the event stays in the consumer's hands.
    wait_outcome(&resolver, "error", 1.0).await;
    js.create_stream(dlq_config).await.unwrap();
    wait_outcome(&resolver, "dead_lettered", 1.0).await;
    let dead = stored(&world.nats.url(), subject::DLQ_STREAM).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].envelope.params.get("ParticipantSid"), Some("MB16"));
    assert_eq!(world.fake.count(&Method::GET), 2);
    let info = participant_consumer_info(&world.nats.url()).await;
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
}

#[tokio::test]
async fn the_fake_api_refuses_what_twilio_refuses() {
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    fake.add_participant(CONVERSATION, "MB17", "{}");
    let client = frontline_tests::http::WebhookClient::new(fake.addr);
    let path = format!("/v1/Conversations/{CONVERSATION}/Participants/MB17");
    let json = client
        .send(
            Method::POST,
            &path,
            &[("Content-Type", "application/json")],
            bytes::Bytes::from_static(br#"{"Attributes":"{}"}"#),
        )
        .await;
    assert_eq!(json.status, 415);
    let put = client
        .send(Method::PUT, &path, &[], bytes::Bytes::new())
        .await;
    assert_eq!(put.status, 405);
    assert_eq!(fake.attributes(CONVERSATION, "MB17").as_deref(), Some("{}"));
}

#[tokio::test]
async fn a_permanent_error_is_dead_lettered_with_its_reason() {
    let world = world().await;
    let resolver = world.resolver().await;
    world.fake.add_participant(CONVERSATION, "MB06", "{}");
    world.fake.fail_next(1, Failure::Status(400, None));
    world.participant_added("MB06", BOBBY).await;
    wait_outcome(&resolver, "dead_lettered", 1.0).await;
    let dead = stored(&world.nats.url(), subject::DLQ_STREAM).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].subject,
        "frontline.dlq.frontline-resolver.onParticipantAdded"
    );
    let reason = dead[0].header(headers::DLQ_REASON).expect("a reason");
    assert!(reason.contains("400"), "{reason}");
    assert_eq!(dead[0].envelope.params.get("ParticipantSid"), Some("MB06"));
    assert_eq!(world.fake.count(&Method::POST), 0);
}

#[tokio::test]
async fn max_deliver_attempts_then_a_dead_letter() {
    let world = world().await;
    let resolver = world.resolver_with(|config| config.max_deliver = 2).await;
    world.fake.add_participant(CONVERSATION, "MB07", "{}");
    world.fake.fail_next(10, Failure::Status(503, None));
    world.participant_added("MB07", BOBBY).await;
    wait_outcome(&resolver, "dead_lettered", 1.0).await;
    let dead = stored(&world.nats.url(), subject::DLQ_STREAM).await;
    let reason = dead[0].header(headers::DLQ_REASON).unwrap();
    assert!(reason.contains("after 2 attempts"), "{reason}");
    assert_eq!(world.fake.count(&Method::GET), 2);
}

#[tokio::test]
async fn a_participant_that_is_gone_is_acknowledged_and_counted() {
    let world = world().await;
    let resolver = world.resolver().await;
    world.participant_added("MB08", BOBBY).await;
    wait_outcome(&resolver, "gone", 1.0).await;
    assert!(
        stored(&world.nats.url(), subject::DLQ_STREAM)
            .await
            .is_empty()
    );
    assert_eq!(world.fake.count(&Method::GET), 1);
}

#[tokio::test]
async fn an_already_enriched_participant_gets_no_post() {
    let world = world().await;
    let resolver = world.resolver().await;
    let done = json!({"customer_id": "1001", "display_name": "Bobby Shaftoe",
                      "avatar": "https://avatars.example.com/customers/1001.png"});
    world
        .fake
        .add_participant(CONVERSATION, "MB09", &done.to_string());
    world.participant_added("MB09", BOBBY).await;
    wait_outcome(&resolver, "accepted", 1.0).await;
    assert_eq!(world.fake.count(&Method::GET), 1);
    assert_eq!(world.fake.count(&Method::POST), 0);
}

#[tokio::test]
async fn two_resolvers_handle_each_event_exactly_once() {
    let world = world().await;
    let first = world.resolver().await;
    let second = world.resolver().await;
    let participants: Vec<String> = (0..20).map(|i| format!("MB1{i:02}")).collect();
    for participant in &participants {
        world.fake.add_participant(CONVERSATION, participant, "{}");
        world.participant_added(participant, BOBBY).await;
    }
    for participant in &participants {
        world.enriched(participant).await;
    }
    let handled = outcome(&first, "modified").await + outcome(&second, "modified").await;
    assert_eq!(handled, 20.0);
    assert_eq!(world.fake.count(&Method::POST), 20);
    assert_eq!(world.fake.count(&Method::GET), 20);
}

#[tokio::test]
async fn a_killed_resolver_s_unacked_event_goes_to_another() {
    let world = world().await;
    let doomed =
        spawn_isolated_resolver(resolver_config_with_twilio(&world.nats.url(), &world.fake));
    doomed.wait_ready().await;
    world.fake.add_participant(CONVERSATION, "MB10", "{}");
    // The first call hangs: the doomed resolver holds the event, unacknowledged.
    world
        .fake
        .fail_next(1, Failure::Hold(Duration::from_secs(30)));
    world.participant_added("MB10", BOBBY).await;
    eventually(WAIT, "the doomed resolver to call Twilio", || async {
        (world.fake.count(&Method::GET) == 1).then_some(())
    })
    .await;
    let survivor = world.resolver().await;
    doomed.kill();
    assert_eq!(world.enriched("MB10").await["customer_id"], "1001");
    assert_eq!(outcome(&survivor, "modified").await, 1.0);
    assert_eq!(world.fake.count(&Method::POST), 1);
}

#[tokio::test]
async fn wrong_credentials_are_a_permanent_error() {
    let world = world().await;
    let resolver = world
        .resolver_with(|config| config.twilio_auth_tokens = Some("not-the-token".parse().unwrap()))
        .await;
    world.fake.add_participant(CONVERSATION, "MB11", "{}");
    world.participant_added("MB11", BOBBY).await;
    wait_outcome(&resolver, "dead_lettered", 1.0).await;
    let dead = stored(&world.nats.url(), subject::DLQ_STREAM).await;
    assert!(dead[0].header(headers::DLQ_REASON).unwrap().contains("401"));
    assert_eq!(
        world.fake.attributes(CONVERSATION, "MB11").as_deref(),
        Some("{}")
    );
}

#[tokio::test]
async fn the_rest_client_speaks_tls_and_trusts_only_its_roots() {
    use frontline_tests::tls::TestCa;

    let nats = NatsServer::start();
    let ca = TestCa::new();
    let fake = FakeTwilio::start_tls(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN, &ca).await;
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    fake.add_participant(CONVERSATION, "MB18", "{}");

    // Without the test CA the fake's certificate is refused: no request is ever made.
    let untrusting = spawn_resolver(resolver_config_with_twilio(&nats.url(), &fake)).await;
    untrusting.wait_ready().await;
    let added = twilio::participant_added(CONVERSATION, "MB18", BOBBY);
    assert_eq!(ingress.client.post(&added).await.status, 200);
    wait_outcome(&untrusting, "retried", 1.0).await;
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    untrusting.stop().await;

    // With TWILIO_CA_FILE naming it, the same client talks HTTPS to it.
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let mut config = resolver_config_with_twilio(&nats.url(), &fake);
    config.twilio_ca_file = Some(ca_file);
    let trusting = spawn_resolver(config).await;
    trusting.wait_ready().await;
    eventually(WAIT, "the update over HTTPS", || async {
        fake.attributes(CONVERSATION, "MB18")
            .filter(|attributes| attributes.contains("1001"))
    })
    .await;
    assert!(fake.base_url().starts_with("https://"));
}

#[tokio::test]
async fn an_oversized_answer_is_not_read_and_dead_letters_the_update() {
    let world = world().await;
    let resolver = world.resolver().await;
    world.fake.add_participant(CONVERSATION, "MB19", "{}");
    world.fake.fail_next(1, Failure::Oversized(4 * 1024 * 1024));
    world.participant_added("MB19", BOBBY).await;
    wait_outcome(&resolver, "dead_lettered", 1.0).await;
    let dead = stored(&world.nats.url(), subject::DLQ_STREAM).await;
    let reason = dead[0].header(headers::DLQ_REASON).unwrap();
    assert!(reason.contains("over 1048576 bytes"), "{reason}");
}

#[tokio::test]
async fn credentials_never_travel_in_cleartext_to_a_remote_api() {
    let nats = NatsServer::start();
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    let mut config = resolver_config_with_twilio(&nats.url(), &fake);
    config.twilio_api_base = "http://conversations.twilio.com".into();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = tokio::time::timeout(
        WAIT,
        frontline_resolver::run(admin, config, std::future::pending()),
    )
    .await
    .expect("refused at once");
    match refused {
        Err(frontline_resolver::RunError::Config(message)) => {
            assert!(message.contains("TWILIO_API_BASE"), "{message}")
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}
