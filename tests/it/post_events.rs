//! Post-events end to end: stored in the stream under the right subject with the envelope and
//! headers, de-duplicated, answered only after the PubAck.

use frontline_shared::{EventKind, EventType, headers, subject};
use frontline_tests::http::metric;
use frontline_tests::stack::{Stack, stored};
use frontline_tests::twilio;

const CONVERSATION: &str = "CH00000000000000000000000000000042";

#[tokio::test]
async fn every_post_event_type_is_stored_under_its_subject() {
    let stack = Stack::start().await;
    let posts: Vec<EventType> = EventType::ALL
        .iter()
        .copied()
        .filter(|e| e.kind() == EventKind::Post)
        .collect();
    for event in &posts {
        let params = twilio::event(event.as_str(), &[("ConversationSid", CONVERSATION)]);
        let answer = stack.client().post(&params).await;
        assert_eq!(answer.status, 200, "{event}");
        assert!(answer.body.is_empty(), "{event}: {}", answer.text());
    }
    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(messages.len(), posts.len());
    for (message, event) in messages.iter().zip(&posts) {
        assert_eq!(
            message.subject,
            format!("frontline.post.{event}.{CONVERSATION}")
        );
        assert_eq!(message.envelope.event_type, event.as_str());
        assert_eq!(
            message.envelope.account_sid.as_deref(),
            Some(twilio::ACCOUNT_SID)
        );
        assert_eq!(
            message.envelope.params.get("ConversationSid"),
            Some(CONVERSATION)
        );
        assert_eq!(
            message.header(headers::EVENT_TYPE).as_deref(),
            Some(event.as_str())
        );
        assert_eq!(
            message.header(headers::ACCOUNT_SID).as_deref(),
            Some(twilio::ACCOUNT_SID)
        );
        assert_eq!(
            message.header(headers::CONVERSATION_SID).as_deref(),
            Some(CONVERSATION)
        );
        let traceparent = message.header(headers::TRACEPARENT).expect("a traceparent");
        assert!(
            frontline_runtime::telemetry::trace_id(&traceparent).is_some(),
            "{traceparent}"
        );
        assert!(message.header(headers::MSG_ID).is_some());
    }
}

#[tokio::test]
async fn envelope_keeps_every_parameter_and_repeated_names() {
    let stack = Stack::start().await;
    let mut params = twilio::participant_added(
        CONVERSATION,
        "MB00000000000000000000000000000007",
        "+14155550101",
    );
    params.push(("MessagingBinding.Address".into(), "+14155550199".into()));
    params.push(("SomeNewTwilioParam".into(), "ünïcode & spaces".into()));
    let answer = stack.client().post(&params).await;
    assert_eq!(answer.status, 200);
    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    let envelope = &messages[0].envelope;
    assert_eq!(
        envelope
            .params
            .get_all("MessagingBinding.Address")
            .collect::<Vec<_>>(),
        ["+14155550101", "+14155550199"]
    );
    assert_eq!(
        envelope.params.get("SomeNewTwilioParam"),
        Some("ünïcode & spaces")
    );
    assert_eq!(envelope.params.get("RetryCount"), Some("0"));
    // Every distinct name is there (the repeated one once, as an array).
    assert_eq!(envelope.params.len(), params.len() - 1);
    assert!(
        envelope.received_at.ends_with('Z') && envelope.received_at.len() == 24,
        "{}",
        envelope.received_at
    );
    assert_eq!(envelope.idempotency_token, None);
}

#[tokio::test]
async fn unknown_event_types_and_unsafe_tokens_are_sanitised() {
    let stack = Stack::start().await;
    let cases = [
        (
            "onSomethingNew",
            CONVERSATION,
            format!("frontline.post.unknown.{CONVERSATION}"),
        ),
        (
            "onMessageAdded",
            "CH1.*.>",
            "frontline.post.onMessageAdded._".to_owned(),
        ),
        (
            "frontline.pre.onConversationAdd",
            "",
            "frontline.post.unknown._".to_owned(),
        ),
        (
            "onmessageadded",
            "CH 1",
            "frontline.post.unknown._".to_owned(),
        ),
    ];
    for (event_type, sid, _) in &cases {
        let params = twilio::event(event_type, &[("ConversationSid", sid)]);
        assert_eq!(
            stack.client().post(&params).await.status,
            200,
            "{event_type}"
        );
    }
    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    let subjects: Vec<&str> = messages.iter().map(|m| m.subject.as_str()).collect();
    let expected: Vec<&str> = cases.iter().map(|(_, _, s)| s.as_str()).collect();
    assert_eq!(subjects, expected);
    // The envelope keeps what Twilio sent, untouched.
    assert_eq!(messages[0].envelope.event_type, "onSomethingNew");
    assert_eq!(
        messages[1].envelope.params.get("ConversationSid"),
        Some("CH1.*.>")
    );
    assert_eq!(
        messages[0].header(headers::EVENT_TYPE).as_deref(),
        Some("onSomethingNew")
    );
}

#[tokio::test]
async fn a_duplicate_is_stored_once_and_still_answered_200() {
    let stack = Stack::start().await;
    // With Twilio's idempotency token, sent twice: stored once.
    let first = twilio::message_added(CONVERSATION, 1, "hello");
    let token = [("I-Twilio-Idempotency-Token", "idem-0001")];
    assert_eq!(stack.client().post_with(&first, &token).await.status, 200);
    assert_eq!(stack.client().post_with(&first, &token).await.status, 200);
    // Without a token: a retry differs only in RetryCount.
    let second = twilio::message_added(CONVERSATION, 2, "second");
    assert_eq!(stack.client().post(&second).await.status, 200);
    let mut retry = second.clone();
    for (name, value) in &mut retry {
        if name == "RetryCount" {
            *value = "1".into();
        }
    }
    assert_eq!(stack.client().post(&retry).await.status, 200);
    // A genuinely different event is stored.
    assert_eq!(
        stack
            .client()
            .post(&twilio::message_added(CONVERSATION, 3, "third"))
            .await
            .status,
        200
    );

    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    let bodies: Vec<&str> = messages
        .iter()
        .map(|m| m.envelope.params.get("Body").unwrap())
        .collect();
    assert_eq!(bodies, ["hello", "second", "third"]);
    assert_eq!(
        messages[0].envelope.idempotency_token.as_deref(),
        Some("idem-0001")
    );
    // The unsigned token never decides what is stored: the id is the signed parameters'.
    let id = messages[0].header(headers::MSG_ID).unwrap();
    assert_eq!(id.len(), 64, "{id}");
    assert_ne!(id, "idem-0001");
    let metrics = frontline_tests::http::admin_get(stack.ingress.admin, "/metrics")
        .await
        .text();
    assert_eq!(
        metric(
            &metrics,
            r#"frontline_ingress_requests_total{event_type="onMessageAdded",outcome="duplicate"}"#
        ),
        2.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn get_post_events_are_stored() {
    let stack = Stack::start().await;
    let answer = stack
        .client()
        .get(&twilio::message_added(CONVERSATION, 9, "via GET"))
        .await;
    assert_eq!(answer.status, 200);
    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].envelope.params.get("Body"), Some("via GET"));
}

#[tokio::test]
async fn a_traceparent_from_twilio_is_continued_on_the_message() {
    let stack = Stack::start().await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let params = twilio::message_added(CONVERSATION, 1, "traced");
    assert_eq!(
        stack
            .client()
            .post_with(&params, &[("traceparent", incoming)])
            .await
            .status,
        200
    );
    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    let traceparent = messages[0].header(headers::TRACEPARENT).unwrap();
    assert_eq!(
        frontline_runtime::telemetry::trace_id(&traceparent),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
}
