//! Frontline's integration callbacks end to end: each route signed as Frontline signs it,
//! answered by a resolver from the example directory and templates; forged, unanswered and slow
//! callbacks; and routing through the durable consumer `frontline-router` to the (fake) Twilio
//! REST API.

use std::time::{Duration, Instant};

use frontline_shared::{headers, subject};
use frontline_tests::fake_twilio::{Failure, FakeTwilio};
use frontline_tests::http::{Answer, admin_get, metric};
use frontline_tests::nats::NatsServer;
use frontline_tests::stack::{
    Ingress, Stack, connect, ready_ingress, resolver_config, resolver_config_with_twilio,
    responder_on, spawn_resolver, stored,
};
use frontline_tests::{WAIT, eventually, twilio};
use serde_json::json;

const CONVERSATION: &str = "CH00000000000000000000000000000444";

fn params(pairs: &[(&str, &str)]) -> twilio::Params {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// POSTs `pairs` to `path`, signed as Frontline signs it (over `PUBLIC_URL` + path).
async fn callback(ingress: &Ingress, path: &str, pairs: &[(&str, &str)]) -> Answer {
    let form = params(pairs);
    let signature = twilio::sign(
        twilio::AUTH_TOKEN,
        &format!("{}{path}", twilio::PUBLIC_URL),
        &form,
    );
    ingress
        .client
        .post_form(path, &form, &[("X-Twilio-Signature", &signature)])
        .await
}

fn json_of(answer: &Answer) -> serde_json::Value {
    assert_eq!(answer.headers["content-type"], "application/json");
    answer.json()
}

#[tokio::test]
async fn every_route_is_signed_and_answered() {
    let stack = Stack::start().await;
    let ingress = &stack.ingress;
    let list = callback(
        ingress,
        "/callbacks/crm",
        &[
            ("Location", "GetCustomersList"),
            ("Worker", "alice@example.com"),
            ("PageSize", "30"),
        ],
    )
    .await;
    assert_eq!(list.status, 200);
    let ids: Vec<String> = json_of(&list)["objects"]["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        ["1001", "1002", "1004"],
        "alice's customers and everyone's"
    );
    assert_eq!(json_of(&list)["objects"]["searchable"], true);

    let details = callback(
        ingress,
        "/callbacks/crm",
        &[
            ("Location", "GetCustomerDetailsByCustomerId"),
            ("Worker", "alice@example.com"),
            ("CustomerId", "1001"),
        ],
    )
    .await;
    let customer = &json_of(&details)["objects"]["customer"];
    assert_eq!(customer["display_name"], "Bobby Shaftoe");
    assert_eq!(customer["channels"][0]["value"], "+14155550101");
    assert!(customer.get("worker").is_none(), "{customer}");

    let proxy = callback(
        ingress,
        "/callbacks/outgoing-conversation",
        &[
            ("Location", "GetProxyAddress"),
            ("Worker", "alice@example.com"),
            ("CustomerId", "1001"),
            ("ChannelType", "whatsapp"),
            ("ChannelValue", "whatsapp:+14155550101"),
        ],
    )
    .await;
    assert_eq!(
        json_of(&proxy),
        json!({"proxy_address": "whatsapp:+18005550100"})
    );
    let no_proxy = callback(
        ingress,
        "/callbacks/outgoing-conversation",
        &[
            ("Location", "GetProxyAddress"),
            ("CustomerId", "1001"),
            ("ChannelType", "messenger"),
        ],
    )
    .await;
    assert_eq!(no_proxy.status, 403);

    let templates = callback(
        ingress,
        "/callbacks/templates",
        &[
            ("Location", "GetTemplatesByCustomerId"),
            ("Worker", "alice@example.com"),
            ("CustomerId", "1001"),
            ("ConversationSid", CONVERSATION),
        ],
    )
    .await;
    let first = &json_of(&templates)[0];
    assert_eq!(first["display_name"], "Openers");
    assert_eq!(
        first["templates"][0]["content"],
        "Hi Bobby Shaftoe, this is alice@example.com from Owl Bank. How can I help you today?"
    );
    let unknown = callback(
        ingress,
        "/callbacks/templates",
        &[
            ("Location", "GetTemplatesByCustomerId"),
            ("CustomerId", "9999"),
        ],
    )
    .await;
    assert_eq!(unknown.status, 404);
    let wrong = callback(
        ingress,
        "/callbacks/crm",
        &[("Location", "GetProxyAddress")],
    )
    .await;
    assert_eq!(wrong.status, 422);

    let metrics = admin_get(ingress.admin, "/metrics").await.text();
    assert_eq!(
        metric(
            &metrics,
            r#"frontline_ingress_callbacks_total{location="GetCustomersList",outcome="answered",route="crm"}"#
        ),
        1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn forged_and_non_form_callbacks_are_refused() {
    let stack = Stack::start().await;
    let client = &stack.ingress.client;
    let form = params(&[
        ("Location", "GetCustomersList"),
        ("Worker", "alice@example.com"),
    ]);
    // Signed for another path: the signature covers the path.
    let signature = twilio::sign(
        twilio::AUTH_TOKEN,
        &format!("{}/callbacks/templates", twilio::PUBLIC_URL),
        &form,
    );
    let forged = client
        .post_form(
            "/callbacks/crm",
            &form,
            &[("X-Twilio-Signature", &signature)],
        )
        .await;
    assert_eq!(forged.status, 403);
    let unsigned = client.post_form("/callbacks/crm", &form, &[]).await;
    assert_eq!(unsigned.status, 403);
    let get = client
        .send(
            http::Method::GET,
            "/callbacks/crm",
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(get.status, 405);
    assert_eq!(get.headers["allow"], "POST");
    let metrics = admin_get(stack.ingress.admin, "/metrics").await.text();
    assert_eq!(
        metric(
            &metrics,
            r#"frontline_ingress_callbacks_total{location="other",outcome="bad_signature",route="crm"}"#
        ),
        2.0
    );
}

#[tokio::test]
async fn no_resolver_is_503_at_once_and_a_slow_one_at_the_timeout() {
    let nats = NatsServer::start();
    let ingress = ready_ingress(&nats.url(), |config| config.callback_timeout_ms = 400).await;
    let ask = || {
        callback(
            &ingress,
            "/callbacks/crm",
            &[
                ("Location", "GetCustomersList"),
                ("Worker", "alice@example.com"),
            ],
        )
    };
    let started = Instant::now();
    assert_eq!(ask().await.status, 503);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    let _slow = responder_on(
        &nats.url(),
        "frontline.callback.>",
        Duration::from_secs(3),
        |_| Some(br#"{"status":200,"body":{}}"#.to_vec()),
    )
    .await;
    let started = Instant::now();
    assert_eq!(ask().await.status, 503);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(1_600),
        "answered after {elapsed:?}, not at the 400 ms timeout"
    );
}

#[tokio::test]
async fn an_unreadable_reply_is_503() {
    let nats = NatsServer::start();
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    let _garbage = responder_on(&nats.url(), "frontline.callback.>", Duration::ZERO, |n| {
        Some(match n {
            1 => b"not json".to_vec(),
            _ => br#"{"status":99,"body":null}"#.to_vec(),
        })
    })
    .await;
    for _ in 0..2 {
        let answer = callback(
            &ingress,
            "/callbacks/crm",
            &[("Location", "GetCustomersList")],
        )
        .await;
        assert_eq!(answer.status, 503);
    }
}

#[tokio::test]
async fn a_kv_directory_change_is_in_the_next_crm_answer() {
    let nats = NatsServer::start();
    let js = async_nats::jetstream::new(connect(&nats.url()).await);
    frontline_resolver::directory::kv::import(
        &js,
        "customers",
        &frontline_tests::stack::example_directory(),
    )
    .await
    .unwrap();
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    let mut config = resolver_config(&nats.url());
    config.customer_directory = "nats-kv:customers".parse().unwrap();
    let resolver = spawn_resolver(config).await;
    resolver.wait_ready().await;
    let names = || async {
        let answer = callback(
            &ingress,
            "/callbacks/crm",
            &[
                ("Location", "GetCustomersList"),
                ("Worker", "carol@example.com"),
                ("Query", "new"),
            ],
        )
        .await;
        json_of(&answer)["objects"]["customers"].clone()
    };
    assert_eq!(names().await, json!([]));
    let store = js.get_key_value("customers").await.unwrap();
    store
        .put(
            "2001",
            br#"{"customer_id":"2001","display_name":"A New Customer","channels":[]}"#
                .to_vec()
                .into(),
        )
        .await
        .unwrap();
    eventually(WAIT, "the new customer in the CRM list", || async {
        (names().await == json!([{"customer_id": "2001", "display_name": "A New Customer"}]))
            .then_some(())
    })
    .await;
}

/// A world with the fake Twilio API and resolvers that route.
struct Routing {
    nats: NatsServer,
    fake: FakeTwilio,
    ingress: Ingress,
}

impl Routing {
    async fn start() -> Routing {
        let nats = NatsServer::start();
        let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
        let ingress = ready_ingress(&nats.url(), |_| {}).await;
        Routing {
            nats,
            fake,
            ingress,
        }
    }

    async fn resolver(&self, fallback: Option<&str>) -> frontline_tests::stack::Resolver {
        let mut config = resolver_config_with_twilio(&self.nats.url(), &self.fake);
        config.routing_fallback_worker = fallback.map(str::to_owned);
        let resolver = spawn_resolver(config).await;
        resolver.wait_ready().await;
        resolver
    }

    async fn route(&self, conversation: &str, address: &str) -> Answer {
        callback(
            &self.ingress,
            "/callbacks/routing",
            &[
                ("ConversationSid", conversation),
                ("MessagingBinding.Address", address),
                ("MessagingBinding.ProxyAddress", "+18005550100"),
                ("AccountSid", twilio::ACCOUNT_SID),
            ],
        )
        .await
    }
}

async fn routing_result(resolver: &frontline_tests::stack::Resolver, result: &str) -> f64 {
    let text = admin_get(resolver.admin, "/metrics").await.text();
    frontline_tests::http::try_metric(
        &text,
        &format!(r#"frontline_resolver_routing_total{{result="{result}"}}"#),
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn routing_adds_the_customer_s_worker_once_across_replicas() {
    let world = Routing::start().await;
    let first = world.resolver(None).await;
    let second = world.resolver(None).await;
    let conversations: Vec<String> = (0..10).map(|i| format!("CH{i:032}")).collect();
    for conversation in &conversations {
        let answer = world.route(conversation, "+14155550101").await;
        assert_eq!(answer.status, 200);
    }
    // Routing callbacks are stored like post-events, de-duplicated.
    assert_eq!(
        world.route(&conversations[0], "+14155550101").await.status,
        200
    );
    let stored = stored(&world.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(stored.len(), 10);
    assert!(stored[0].subject.starts_with("frontline.routing.CH"));
    assert_eq!(
        stored[0].header(headers::EVENT_TYPE).as_deref(),
        Some("routing")
    );
    for conversation in &conversations {
        eventually(WAIT, "the worker added", || async {
            (world.fake.identities(conversation) == ["alice@example.com"]).then_some(())
        })
        .await;
    }
    let routed = routing_result(&first, "routed").await + routing_result(&second, "routed").await;
    assert_eq!(routed, 10.0);
}

#[tokio::test]
async fn a_worker_already_there_is_done_and_a_server_error_is_retried() {
    let world = Routing::start().await;
    let resolver = world.resolver(None).await;
    // Already a participant: 409 counts as done.
    let conversation = "CH00000000000000000000000000000501";
    assert_eq!(world.route(conversation, "+14155550101").await.status, 200);
    eventually(WAIT, "routed", || async {
        (routing_result(&resolver, "routed").await == 1.0).then_some(())
    })
    .await;
    let mut again = world.route(conversation, "whatsapp:+14155550101").await;
    assert_eq!(again.status, 200);
    eventually(WAIT, "the 409 counted as done", || async {
        (routing_result(&resolver, "already_there").await == 1.0).then_some(())
    })
    .await;
    // A 500, then success.
    world.fake.fail_next(1, Failure::Status(500, None));
    let retried = "CH00000000000000000000000000000502";
    again = world.route(retried, "+14155550102").await;
    assert_eq!(again.status, 200);
    eventually(WAIT, "routed after the retry", || async {
        (world.fake.identities(retried) == ["alice@example.com"]).then_some(())
    })
    .await;
    assert_eq!(routing_result(&resolver, "retried").await, 1.0);
}

#[tokio::test]
async fn a_permanent_error_is_dead_lettered_and_no_worker_is_unrouted() {
    let world = Routing::start().await;
    let resolver = world.resolver(None).await;
    world.fake.fail_next(1, Failure::Status(400, None));
    assert_eq!(
        world
            .route("CH00000000000000000000000000000601", "+14155550102")
            .await
            .status,
        200
    );
    eventually(WAIT, "a dead letter", || async {
        (routing_result(&resolver, "dead_lettered").await == 1.0).then_some(())
    })
    .await;
    let dead = stored(&world.nats.url(), subject::DLQ_STREAM).await;
    assert_eq!(dead[0].subject, "frontline.dlq.frontline-router.unknown");
    assert_eq!(
        dead[0].header(headers::ORIGINAL_SUBJECT).as_deref(),
        Some("frontline.routing.CH00000000000000000000000000000601")
    );
    // Alan Turing has no worker and there is no fallback: acknowledged, counted unrouted.
    assert_eq!(
        world
            .route("CH00000000000000000000000000000602", "+447700900123")
            .await
            .status,
        200
    );
    eventually(WAIT, "unrouted", || async {
        (routing_result(&resolver, "unrouted").await == 1.0).then_some(())
    })
    .await;
    assert!(
        world
            .fake
            .identities("CH00000000000000000000000000000602")
            .is_empty()
    );
}

#[tokio::test]
async fn the_fallback_worker_takes_customers_without_one() {
    let world = Routing::start().await;
    let resolver = world.resolver(Some("frontdesk@example.com")).await;
    let conversation = "CH00000000000000000000000000000701";
    assert_eq!(world.route(conversation, "+19995550000").await.status, 200);
    eventually(WAIT, "the fallback worker added", || async {
        (world.fake.identities(conversation) == ["frontdesk@example.com"]).then_some(())
    })
    .await;
    assert_eq!(routing_result(&resolver, "routed").await, 1.0);
}
