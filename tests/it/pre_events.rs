//! Pre-events end to end: a real nats-server, the real resolver and ingress, signed webhooks.

use frontline_ingress::config::Fallback;
use frontline_shared::EventKind;
use frontline_shared::EventType;
use frontline_tests::http::metric;
use frontline_tests::stack::Stack;
use frontline_tests::twilio;

#[tokio::test]
async fn known_customer_gets_their_name_and_avatar() {
    let stack = Stack::start().await;
    let mut params = twilio::conversation_add("+14155550101");
    params.retain(|(name, _)| name != "Attributes");
    params.push(("Attributes".into(), r#"{"campaign":"spring"}"#.into()));
    let answer = stack.client().post(&params).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.headers["content-type"], "application/json");
    let body = answer.json();
    assert_eq!(body["friendly_name"], "Bobby Shaftoe");
    let attributes: serde_json::Value =
        serde_json::from_str(body["attributes"].as_str().expect("a JSON string")).unwrap();
    assert_eq!(
        attributes,
        serde_json::json!({"campaign": "spring", "avatar": "https://avatars.example.com/customers/1001.png"})
    );
}

#[tokio::test]
async fn whatsapp_customer_is_found_by_its_prefixed_address() {
    let stack = Stack::start().await;
    let answer = stack
        .client()
        .post(&twilio::conversation_add("whatsapp:+442071838750"))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["friendly_name"], "Grace Hopper");
}

#[tokio::test]
async fn unknown_address_names_the_conversation_after_it_and_no_address_is_accepted() {
    let stack = Stack::start().await;
    let answer = stack
        .client()
        .post(&twilio::conversation_add("+19995550123"))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        serde_json::json!({"friendly_name": "+19995550123"})
    );

    let answer = stack
        .client()
        .post(&twilio::event(
            "onConversationAdd",
            &[("FriendlyName", "SDK chat")],
        ))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "{}");
}

#[tokio::test]
async fn get_webhooks_are_answered_like_posts() {
    let stack = Stack::start().await;
    let answer = stack
        .client()
        .get(&twilio::conversation_add("+14155550102"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["friendly_name"], "Ada Lovelace");
}

#[tokio::test]
async fn every_pre_event_type_is_answered_by_a_resolver() {
    // With the reject fallback a missing answer would be a 503: every 200 here came from a resolver.
    let stack = Stack::start_with(|config| config.pre_event_fallback = Fallback::Reject).await;
    for event in EventType::ALL.iter().filter(|e| e.kind() == EventKind::Pre) {
        if *event == EventType::ConversationAdd {
            continue;
        }
        let params = twilio::event(
            event.as_str(),
            &[("ConversationSid", "CH00000000000000000000000000000001")],
        );
        let answer = stack.client().post(&params).await;
        assert_eq!(answer.status, 200, "{event}");
        assert_eq!(answer.text(), "{}", "{event}");
    }
    let metrics = frontline_tests::http::admin_get(stack.resolver.admin, "/metrics")
        .await
        .text();
    assert_eq!(
        metric(
            &metrics,
            r#"frontline_resolver_messages_total{event_type="onUserUpdate",outcome="accepted"}"#
        ),
        1.0,
        "{metrics}"
    );
}

/// A resolver whose NATS user may only subscribe to pre-events and answer them (`allow_responses`,
/// the least privilege NATS offers a responder) still becomes ready and answers.
#[tokio::test]
async fn a_resolver_with_least_privilege_becomes_ready_and_answers() {
    use frontline_tests::nats::NatsServer;
    use frontline_tests::stack::{ready_ingress, resolver_config, spawn_resolver};
    let nats = NatsServer::start_with_config(
        r#"
        accounts {
          APP {
            jetstream: enabled
            users: [
              { user: ingress, password: ingress }
              { user: resolver, password: resolver, permissions: {
                  subscribe: ["frontline.pre.>"],
                  publish: { deny: [">"] },
                  allow_responses: true
              } }
            ]
          }
        }
        "#,
    );
    let login = |nats: &mut frontline_runtime::nats::NatsArgs, user: &str| {
        nats.user = Some(user.to_owned());
        nats.password = Some(frontline_runtime::secret::Secret::new(user));
    };
    let ingress = ready_ingress(&nats.url(), |config| login(&mut config.nats, "ingress")).await;
    let mut config = resolver_config(&nats.url());
    login(&mut config.nats, "resolver");
    let resolver = spawn_resolver(config).await;
    resolver.wait_ready().await;
    let answer = ingress
        .client
        .post(&twilio::conversation_add("+14155550101"))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["friendly_name"], "Bobby Shaftoe");
}
