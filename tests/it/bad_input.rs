//! Bad input gets the status SPEC.md names, and nothing is published.

use bytes::Bytes;
use frontline_shared::subject;
use frontline_tests::http::{WEBHOOK_PATH, admin_get, form_encode, metric};
use frontline_tests::stack::{Stack, stored};
use frontline_tests::twilio;
use http::Method;

const CONVERSATION: &str = "CH00000000000000000000000000000077";

async fn stream_is_empty(stack: &Stack) {
    assert!(
        stored(&stack.nats.url(), subject::DEFAULT_STREAM)
            .await
            .is_empty(),
        "nothing may be stored"
    );
}

#[tokio::test]
async fn missing_or_wrong_signatures_get_403_and_nothing_is_published() {
    let stack = Stack::start().await;
    let params = twilio::message_added(CONVERSATION, 1, "forged");
    let client = stack.client();
    let missing = client.post_form(WEBHOOK_PATH, &params, &[]).await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.is_empty());
    let wrong = client
        .post_form(
            WEBHOOK_PATH,
            &params,
            &[("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")],
        )
        .await;
    assert_eq!(wrong.status, 403);
    let garbage = client
        .post_form(
            WEBHOOK_PATH,
            &params,
            &[("X-Twilio-Signature", "not base64 at all!")],
        )
        .await;
    assert_eq!(garbage.status, 403);
    // Signed with another token, or for another host: still forged.
    let url = format!("{}{WEBHOOK_PATH}", twilio::PUBLIC_URL);
    let other_token = twilio::sign("someone-elses-token", &url, &params);
    assert_eq!(
        client
            .post_form(
                WEBHOOK_PATH,
                &params,
                &[("X-Twilio-Signature", &other_token)]
            )
            .await
            .status,
        403
    );
    let other_host = twilio::sign(
        twilio::AUTH_TOKEN,
        &format!("https://evil.example.com{WEBHOOK_PATH}"),
        &params,
    );
    assert_eq!(
        client
            .post_form(
                WEBHOOK_PATH,
                &params,
                &[("X-Twilio-Signature", &other_host)]
            )
            .await
            .status,
        403
    );
    // A pre-event with a bad signature never reaches a resolver either.
    let pre = twilio::conversation_add("+14155550101");
    assert_eq!(
        client
            .post_form(WEBHOOK_PATH, &pre, &[("X-Twilio-Signature", "AAAA")])
            .await
            .status,
        403
    );
    stream_is_empty(&stack).await;
    let metrics = admin_get(stack.ingress.admin, "/metrics").await.text();
    assert_eq!(
        metric(
            &metrics,
            r#"frontline_ingress_requests_total{event_type="other",outcome="bad_signature"}"#
        ),
        6.0,
        "{metrics}"
    );
    let resolver = admin_get(stack.resolver.admin, "/metrics").await.text();
    for outcome in ["accepted", "modified", "rejected", "error", "expired"] {
        let series = format!(
            r#"frontline_resolver_messages_total{{event_type="onConversationAdd",outcome="{outcome}"}}"#
        );
        assert_eq!(
            metric(&resolver, &series),
            0.0,
            "the resolver was asked: {resolver}"
        );
    }
}

#[tokio::test]
async fn signatures_over_either_port_form_and_any_configured_token_are_accepted() {
    let stack = Stack::start_with(|config| {
        config.auth_tokens = Some(
            format!("new-token-after-rotation,{}", twilio::AUTH_TOKEN)
                .parse()
                .unwrap(),
        );
    })
    .await;
    let params = twilio::message_added(CONVERSATION, 1, "port form");
    let with_port = twilio::sign(
        twilio::AUTH_TOKEN,
        &format!("https://hooks.example.com:443{WEBHOOK_PATH}"),
        &params,
    );
    let answer = stack
        .client()
        .post_form(WEBHOOK_PATH, &params, &[("X-Twilio-Signature", &with_port)])
        .await;
    assert_eq!(answer.status, 200);
    let params = twilio::message_added(CONVERSATION, 2, "new token");
    let new_token = twilio::sign(
        "new-token-after-rotation",
        &format!("{}{WEBHOOK_PATH}", twilio::PUBLIC_URL),
        &params,
    );
    let answer = stack
        .client()
        .post_form(WEBHOOK_PATH, &params, &[("X-Twilio-Signature", &new_token)])
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        stored(&stack.nats.url(), subject::DEFAULT_STREAM)
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn routes_methods_sizes_and_content_types() {
    let stack = Stack::start_with(|config| config.max_body_bytes = 2_048).await;
    let client = stack.client();
    let params = twilio::message_added(CONVERSATION, 1, "x");
    let signature = twilio::sign(
        twilio::AUTH_TOKEN,
        &format!("{}/other", twilio::PUBLIC_URL),
        &params,
    );
    let not_found = client
        .post_form("/other", &params, &[("X-Twilio-Signature", &signature)])
        .await;
    assert_eq!(not_found.status, 404);
    assert_eq!(
        client
            .send(Method::GET, "/", &[], Bytes::new())
            .await
            .status,
        404
    );

    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let answer = client
            .send(method.clone(), WEBHOOK_PATH, &[], Bytes::new())
            .await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.headers["allow"], "GET, POST");
    }

    let big = twilio::message_added(CONVERSATION, 1, &"x".repeat(4_096));
    assert_eq!(client.post(&big).await.status, 413);

    let body = Bytes::from(form_encode(&params));
    for content_type in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json",
    ] {
        let answer = client
            .send(
                Method::POST,
                WEBHOOK_PATH,
                &[("Content-Type", content_type)],
                body.clone(),
            )
            .await;
        assert_eq!(answer.status, 415, "{content_type}");
    }
    assert_eq!(
        client
            .send(Method::POST, WEBHOOK_PATH, &[], body)
            .await
            .status,
        415
    );

    let no_event_type: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "EventType")
        .cloned()
        .collect();
    assert_eq!(client.post(&no_event_type).await.status, 400);
    let empty_event_type = twilio::event("", &[]);
    assert_eq!(client.post(&empty_event_type).await.status, 400);
    stream_is_empty(&stack).await;
}

#[tokio::test]
async fn a_json_body_signed_through_body_sha256_is_stored() {
    use sha2::Digest;
    let stack = Stack::start().await;
    let body = serde_json::json!({"EventType": "onMessageAdded", "ConversationSid": CONVERSATION, "Index": 4}).to_string();
    let hash = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    let path = format!("{WEBHOOK_PATH}?bodySHA256={hash}");
    let signature = twilio::sign(
        twilio::AUTH_TOKEN,
        &format!("{}{path}", twilio::PUBLIC_URL),
        &[],
    );
    let headers = [
        ("Content-Type", "application/json"),
        ("X-Twilio-Signature", signature.as_str()),
    ];
    let answer = stack
        .client()
        .send(Method::POST, &path, &headers, Bytes::from(body.clone()))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // The same signature over a changed body: the hash no longer matches.
    let forged = body.replace("\"Index\":4", "\"Index\":5");
    assert_eq!(
        stack
            .client()
            .send(Method::POST, &path, &headers, Bytes::from(forged))
            .await
            .status,
        403
    );
    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].envelope.params.get("Index"), Some("4"));
}

#[tokio::test]
async fn admin_routes() {
    let stack = Stack::start().await;
    for admin in [stack.ingress.admin, stack.resolver.admin] {
        assert_eq!(admin_get(admin, "/livez").await.status, 200);
        assert_eq!(admin_get(admin, "/readyz").await.status, 200);
        assert_eq!(admin_get(admin, "/nope").await.status, 404);
        let metrics = admin_get(admin, "/metrics").await;
        assert_eq!(metrics.status, 200);
        assert!(metrics.text().contains("process_resident_memory_bytes"));
    }
    let metrics = admin_get(stack.ingress.admin, "/metrics").await.text();
    for name in [
        "frontline_ingress_requests_total",
        "frontline_ingress_request_duration_seconds",
        "frontline_ingress_in_flight_requests",
        "frontline_ingress_nats_request_duration_seconds",
    ] {
        assert!(metrics.contains(name), "{name}");
    }
    // The webhook route is not on the admin listener, nor the admin routes on the public one.
    assert_eq!(
        admin_get(stack.ingress.admin, WEBHOOK_PATH).await.status,
        404
    );
    assert_eq!(admin_get(stack.ingress.addr, "/metrics").await.status, 404);
}
