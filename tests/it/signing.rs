//! Signing keys for real accounts, end to end: tokens bound to subaccounts, tokens from a watched
//! KV bucket, and Twilio's SharedKey scheme (HMAC-SHA256 under a key named in
//! `X-Twilio-Webhooks-Signature-Settings`), with each refusal counted by its reason.

use frontline_shared::subject;
use frontline_tests::http::{Answer, WEBHOOK_PATH, admin_get, metric};
use frontline_tests::nats::{NatsServer, free_port};
use frontline_tests::stack::{
    Ingress, Stack, connect, ingress_config, ready_ingress, spawn_ingress, stored_bodies,
};
use frontline_tests::{WAIT, eventually, twilio};

const PARENT: &str = "AC00000000000000000000000000000001";
const SUB: &str = "AC00000000000000000000000000000777";
const CONVERSATION: &str = "CH00000000000000000000000000000333";

/// An `onMessageAdded` from `account`, signed with `token`.
async fn post_as(ingress: &Ingress, account: &str, token: &str, body: &str) -> Answer {
    let mut params = twilio::message_added(CONVERSATION, 1, body);
    for (name, value) in &mut params {
        if name == "AccountSid" {
            *value = account.to_owned();
        }
    }
    let signature = twilio::sign(
        token,
        &format!("{}{WEBHOOK_PATH}", twilio::PUBLIC_URL),
        &params,
    );
    ingress
        .client
        .post_form(WEBHOOK_PATH, &params, &[("X-Twilio-Signature", &signature)])
        .await
}

async fn failures(ingress: &Ingress, reason: &str) -> f64 {
    let text = admin_get(ingress.admin, "/metrics").await.text();
    metric(
        &text,
        &format!(r#"frontline_ingress_signature_failures_total{{reason="{reason}"}}"#),
    )
}

#[tokio::test]
async fn a_subaccount_signs_with_its_own_token_not_the_parent_s() {
    let stack = Stack::start_with(|config| {
        config.auth_tokens = Some(
            format!("{PARENT}:parent-token,{SUB}:sub-token")
                .parse()
                .unwrap(),
        );
    })
    .await;
    let ingress = &stack.ingress;
    assert_eq!(post_as(ingress, SUB, "sub-token", "sub").await.status, 200);
    assert_eq!(
        post_as(ingress, PARENT, "parent-token", "parent")
            .await
            .status,
        200
    );
    assert_eq!(
        post_as(ingress, SUB, "parent-token", "forged").await.status,
        403
    );
    assert_eq!(
        post_as(ingress, PARENT, "sub-token", "forged").await.status,
        403
    );
    let other = "AC00000000000000000000000000000999";
    assert_eq!(
        post_as(ingress, other, "parent-token", "other")
            .await
            .status,
        403
    );
    assert_eq!(failures(ingress, "mismatch").await, 2.0);
    assert_eq!(failures(ingress, "unknown_account").await, 1.0);
    let bodies: Vec<String> = stored_bodies(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(bodies, ["sub", "parent"]);
}

#[tokio::test]
async fn tokens_from_the_bucket_take_effect_while_running() {
    let nats = NatsServer::start();
    let ingress = ready_ingress(&nats.url(), |config| {
        config.auth_tokens = None;
        config.auth_token_bucket = Some("twilio-tokens".into());
    })
    .await;
    assert_eq!(
        post_as(&ingress, SUB, "bucket-token", "early").await.status,
        403
    );
    assert_eq!(failures(&ingress, "unknown_account").await, 1.0);

    let js = async_nats::jetstream::new(connect(&nats.url()).await);
    let store = js.get_key_value("twilio-tokens").await.unwrap();
    store
        .put(SUB, "old-token, bucket-token".into())
        .await
        .unwrap();
    eventually(WAIT, "the bucket's token to verify", || async {
        (post_as(&ingress, SUB, "bucket-token", "added").await.status == 200).then_some(())
    })
    .await;
    // Another account gets nothing from this account's tokens.
    assert_eq!(
        post_as(&ingress, PARENT, "bucket-token", "other")
            .await
            .status,
        403
    );
    store.delete(SUB).await.unwrap();
    eventually(WAIT, "the deleted token to stop verifying", || async {
        (post_as(&ingress, SUB, "bucket-token", "deleted")
            .await
            .status
            == 403)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_bucket_must_be_read_before_the_ingress_is_ready() {
    let nats = NatsServer::not_started(free_port());
    let mut config = ingress_config(&nats.url());
    config.auth_token_bucket = Some("twilio-tokens".into());
    let ingress = spawn_ingress(config).await;
    let readyz = admin_get(ingress.admin, "/readyz").await;
    assert_eq!(readyz.status, 503);
    assert!(readyz.text().contains("token bucket"), "{}", readyz.text());
}

/// Signs `params` with a shared key and sends it with the settings header.
async fn post_shared(
    ingress: &Ingress,
    params: &twilio::Params,
    secret: &str,
    settings: &str,
) -> Answer {
    let signature = twilio::sign_sha256(
        secret,
        &format!("{}{WEBHOOK_PATH}", twilio::PUBLIC_URL),
        params,
    );
    ingress
        .client
        .post_form(
            WEBHOOK_PATH,
            params,
            &[
                ("X-Twilio-Signature", &signature),
                ("X-Twilio-Webhooks-Signature-Settings", settings),
            ],
        )
        .await
}

#[tokio::test]
async fn shared_keys_sign_post_and_pre_events_and_rotate() {
    let stack = Stack::start_with(|config| {
        config.shared_keys = Some("ks_old:old-secret,ks_new:new-secret".parse().unwrap());
    })
    .await;
    let ingress = &stack.ingress;
    let post = twilio::message_added(CONVERSATION, 1, "shared");
    let stored_answer = post_shared(
        ingress,
        &post,
        "old-secret",
        "key=ks_old,algorithm=HMAC_SHA256",
    )
    .await;
    assert_eq!(stored_answer.status, 200);
    // The other key of a rotation, on a pre-event: answered by the resolver.
    let pre = post_shared(
        ingress,
        &twilio::conversation_add("+14155550101"),
        "new-secret",
        "key=ks_new,algorithm=HMAC_SHA256",
    )
    .await;
    assert_eq!(pre.json()["friendly_name"], "Bobby Shaftoe");
    // Refusals, each with its reason.
    let refused = [
        (
            "old-secret",
            "key=ks_old,algorithm=HMAC_SHA512",
            "unsupported_algorithm",
        ),
        (
            "old-secret",
            "key=ks_gone,algorithm=HMAC_SHA256",
            "unknown_key",
        ),
        ("new-secret", "key=ks_old,algorithm=HMAC_SHA256", "mismatch"),
    ];
    for (secret, settings, _) in refused {
        let forged = twilio::message_added(CONVERSATION, 2, "refused");
        assert_eq!(
            post_shared(ingress, &forged, secret, settings).await.status,
            403,
            "{settings}"
        );
    }
    for (_, _, reason) in refused {
        assert_eq!(failures(ingress, reason).await, 1.0, "{reason}");
    }
    let bodies: Vec<String> = stored_bodies(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(bodies, ["shared"]);
}
