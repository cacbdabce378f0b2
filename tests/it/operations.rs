//! The operations commands on the real `resolver` binary, against a real nats-server and the
//! fake Twilio API: `twilio-setup` (plan, apply, idempotent, refusals), `doctor` (all green,
//! then each broken piece turning its own check red) and `dlq` (list, retry, purge).

use std::process::Command;
use std::time::Duration;

use frontline_shared::subject;
use frontline_tests::fake_twilio::{Failure, FakeTwilio};
use frontline_tests::nats::{NatsServer, free_port};
use frontline_tests::stack::{
    binary, connect, example_directory, ready_ingress, resolver_config_with_twilio, run_bounded,
    spawn_resolver, stored,
};
use frontline_tests::{WAIT, eventually, twilio};
use http::Method;
use serde_json::json;

const API_KEY: &str = "SK00000000000000000000000000000001";
const API_SECRET: &str = "api-key-secret";

/// What a command printed and how it ended.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `resolver <args>` with exactly `env` (plus the test templates and directory), killed
/// after 30 s.
fn resolver(args: &[&str], env: &[(&str, String)]) -> Ran {
    let mut command = Command::new(binary("resolver"));
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env(
            "TEMPLATES",
            format!(
                "file:{}/../deploy/templates.example.json",
                env!("CARGO_MANIFEST_DIR")
            ),
        )
        .env(
            "CUSTOMER_DIRECTORY",
            format!("file:{}", example_directory().display()),
        )
        .env("RUST_LOG", "error");
    let output = run_bounded(command, Duration::from_secs(30));
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn env(nats: &str, fake: &FakeTwilio, public_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("NATS_URL", nats.to_owned()),
        ("TWILIO_ACCOUNT_SID", twilio::ACCOUNT_SID.to_owned()),
        ("TWILIO_AUTH_TOKEN", twilio::AUTH_TOKEN.to_owned()),
        ("TWILIO_API_KEY", API_KEY.to_owned()),
        ("TWILIO_API_SECRET", API_SECRET.to_owned()),
        ("TWILIO_API_BASE", fake.base_url()),
        ("PUBLIC_URL", public_url.to_owned()),
    ]
}

fn posts(fake: &FakeTwilio) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/Configuration/Webhooks"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_setup_plans_applies_once_and_keeps_other_filters() {
    let fake = FakeTwilio::start(API_KEY, API_SECRET).await;
    fake.set_configuration(
        None,
        json!({"pre_webhook_url": null, "post_webhook_url": "https://old.example/hook",
               "filters": ["onMessageAdded"], "method": "GET", "target": "webhook"}),
    );
    let env = env("nats://127.0.0.1:1", &fake, "https://hooks.example.com");

    let plan = resolver(&["twilio-setup"], &env);
    assert_eq!(plan.code, Some(2), "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("https://old.example/hook"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("https://hooks.example.com/callbacks/crm"),
        "{}",
        plan.stdout
    );
    assert_eq!(posts(&fake), 0, "a plan changes nothing");

    let applied = resolver(
        &["twilio-setup", "--apply", "--filter", "onMessageUpdated"],
        &env,
    );
    assert_eq!(
        applied.code,
        Some(0),
        "{}{}",
        applied.stdout,
        applied.stderr
    );
    assert_eq!(posts(&fake), 1);
    let sent = fake
        .requests()
        .into_iter()
        .find(|r| r.method == Method::POST)
        .unwrap()
        .form;
    let values = |name: &str| -> Vec<String> {
        sent.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let url = "https://hooks.example.com/webhooks/conversations";
    assert_eq!(values("PreWebhookUrl"), [url]);
    assert_eq!(values("PostWebhookUrl"), [url]);
    assert_eq!(values("Method"), ["POST"]);
    assert!(values("Target").is_empty(), "already webhook: not sent");
    assert_eq!(
        values("Filters"),
        [
            "onConversationAdd",
            "onMessageAdded",
            "onMessageUpdated",
            "onParticipantAdded"
        ]
    );

    let again = resolver(
        &["twilio-setup", "--apply", "--filter", "onMessageUpdated"],
        &env,
    );
    assert_eq!(again.code, Some(0), "{}", again.stdout);
    assert!(again.stdout.contains("in line"), "{}", again.stdout);
    assert_eq!(posts(&fake), 1, "a second run changes nothing");
    assert_eq!(
        resolver(&["twilio-setup"], &env).code,
        Some(0),
        "in line: exit 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_setup_on_a_service_and_twilio_refusing() {
    let fake = FakeTwilio::start(API_KEY, API_SECRET).await;
    fake.add_service("IS00000000000000000000000000000001");
    let env = env("nats://127.0.0.1:1", &fake, "https://hooks.example.com");
    let service = [
        "twilio-setup",
        "--service",
        "IS00000000000000000000000000000001",
        "--apply",
    ];
    assert_eq!(resolver(&service, &env).code, Some(0));
    let configuration = fake
        .configuration(Some("IS00000000000000000000000000000001"))
        .unwrap();
    assert_eq!(
        configuration["pre_webhook_url"],
        "https://hooks.example.com/webhooks/conversations"
    );
    assert!(
        fake.configuration(None).unwrap()["pre_webhook_url"].is_null(),
        "the global one is untouched"
    );

    // A wrong service: 404. Wrong credentials: 401. Twilio failing: 500. Each a one-line error.
    let unknown = resolver(
        &[
            "twilio-setup",
            "--service",
            "IS00000000000000000000000000000009",
        ],
        &env,
    );
    let mut wrong = env.clone();
    wrong.retain(|(k, _)| *k != "TWILIO_API_SECRET");
    wrong.push(("TWILIO_API_SECRET", "not-the-secret".into()));
    let refused = resolver(&["twilio-setup"], &wrong);
    fake.fail_next(1, Failure::Status(500, None));
    let failing = resolver(&["twilio-setup", "--apply"], &env);
    for (ran, expected) in [(unknown, "404"), (refused, "401"), (failing, "500")] {
        assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
        let line = ran.stderr.trim();
        assert!(
            line.starts_with("error: ") && !line.contains('\n'),
            "{line}"
        );
        assert!(line.contains(expected), "{line}");
        assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    }
    assert_eq!(posts(&fake), 1, "only the service was changed");
}

fn failed(checks: &serde_json::Value) -> Vec<String> {
    checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["check"].as_str().unwrap().to_owned())
        .collect()
}

fn hint(checks: &serde_json::Value, check: &str) -> String {
    checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .and_then(|c| c["hint"].as_str())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_is_green_on_a_healthy_stack_and_names_each_broken_piece() {
    // The ingress checks signatures against the URL the test client uses.
    let nats = NatsServer::start();
    let fake = FakeTwilio::start(API_KEY, API_SECRET).await;
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let mut config = frontline_tests::stack::ingress_config(&nats.url());
    config.public_url = Some(public_url.parse().unwrap());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let ingress = tokio::spawn(frontline_ingress::run(listener, admin, config, async {
        let _ = stopped.await;
    }));
    eventually(WAIT, "the ingress ready", || async {
        (frontline_tests::http::admin_get(admin_addr, "/readyz")
            .await
            .status
            == 200)
            .then_some(())
    })
    .await;
    let mut resolver_config = resolver_config_with_twilio(&nats.url(), &fake);
    resolver_config.twilio_api_key = Some(API_KEY.into());
    resolver_config.twilio_api_secret = Some(frontline_runtime::secret::Secret::new(API_SECRET));
    let running = spawn_resolver(resolver_config).await;
    running.wait_ready().await;
    let env = env(&nats.url(), &fake, &public_url);
    assert_eq!(resolver(&["twilio-setup", "--apply"], &env).code, Some(0));
    let doctor = |env: &[(&str, String)]| {
        let ran = resolver(&["doctor", "--json"], env);
        let checks: Vec<serde_json::Value> = ran
            .stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON check per line"))
            .collect();
        (ran, json!(checks))
    };

    let (healthy, checks) = doctor(&env);
    assert_eq!(healthy.code, Some(0), "{}", healthy.stdout);
    assert!(failed(&checks).is_empty(), "{checks}");
    let human = resolver(&["doctor"], &env);
    assert!(
        human.stdout.contains('✔') && !human.stdout.contains('✘'),
        "{}",
        human.stdout
    );

    let with = |key: &'static str, value: String| {
        let mut changed: Vec<(&str, String)> =
            env.iter().filter(|(k, _)| *k != key).cloned().collect();
        changed.push((key, value));
        changed
    };
    // A wrong PUBLIC_URL (a path prefix a proxy would add): only the public check.
    let (ran, checks) = doctor(&with("PUBLIC_URL", format!("{public_url}/proxy")));
    assert_eq!(ran.code, Some(1));
    assert_eq!(
        failed(&checks),
        [
            "Twilio webhook configuration",
            "signed test request to PUBLIC_URL"
        ]
    );
    assert!(hint(&checks, "signed test request to PUBLIC_URL").contains("PUBLIC_URL"));
    // A token that is not the ingress's: only the signed request.
    let (_, checks) = doctor(&with("TWILIO_AUTH_TOKEN", "another-token".into()));
    assert_eq!(failed(&checks), ["signed test request to PUBLIC_URL"]);
    assert!(hint(&checks, "signed test request to PUBLIC_URL").contains("TWILIO_AUTH_TOKEN"));
    // Filters missing in Twilio: only the configuration.
    let mut configuration = fake.configuration(None).unwrap();
    configuration["filters"] = json!(["onConversationAdd"]);
    fake.set_configuration(None, configuration);
    let (_, checks) = doctor(&env);
    assert_eq!(failed(&checks), ["Twilio webhook configuration"]);
    assert!(hint(&checks, "Twilio webhook configuration").contains("twilio-setup --apply"));
    assert_eq!(resolver(&["twilio-setup", "--apply"], &env).code, Some(0));
    // No resolver: the signed request gets the fallback.
    running.stop().await;
    let (_, checks) = doctor(&env);
    assert_eq!(failed(&checks), ["signed test request to PUBLIC_URL"]);
    assert!(hint(&checks, "signed test request to PUBLIC_URL").contains("start a resolver"));
    // NATS down: its check, and the stream check it makes impossible.
    let (_, checks) = {
        let ran = resolver(
            &["doctor", "--json", "--skip-public"],
            &with("NATS_URL", "nats://127.0.0.1:1".into()),
        );
        let checks: Vec<serde_json::Value> = ran
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (ran, json!(checks))
    };
    assert_eq!(failed(&checks), ["NATS reachable", "streams and consumers"]);
    assert!(hint(&checks, "NATS reachable").contains("NATS_URL"));
    let _ = stop.send(());
    let _ = ingress.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_retried_once_fixed_and_purged() {
    let nats = NatsServer::start();
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    let running = spawn_resolver(resolver_config_with_twilio(&nats.url(), &fake)).await;
    running.wait_ready().await;
    // Another service's own consumer on the stream.
    let js = async_nats::jetstream::new(connect(&nats.url()).await);
    let stream = js.get_stream(subject::DEFAULT_STREAM).await.unwrap();
    let mut other: async_nats::jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            "other-service",
            async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("other-service".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Two updates the API refuses for good: dead letters.
    let conversation = "CH00000000000000000000000000000888";
    fake.fail_next(2, Failure::Status(400, None));
    for participant in ["MB01", "MB02"] {
        let added = twilio::participant_added(conversation, participant, "+14155550101");
        assert_eq!(ingress.client.post(&added).await.status, 200);
    }
    eventually(WAIT, "two dead letters", || async {
        (stored(&nats.url(), subject::DLQ_STREAM).await.len() == 2).then_some(())
    })
    .await;
    let mut env = env(&nats.url(), &fake, "https://hooks.example.com");
    env.retain(|(k, _)| *k != "TWILIO_API_KEY" && *k != "TWILIO_API_SECRET");
    let listed = resolver(&["dlq", "list"], &env);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert!(
        listed
            .stdout
            .contains("frontline.post.onParticipantAdded.CH"),
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains("400"), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("2 dead letter(s)"),
        "{}",
        listed.stdout
    );

    // The cause is fixed: MB01 exists now (MB02 does not: a 404 is done, as in the consumer).
    fake.add_participant(conversation, "MB01", "{}");
    let first = stored(&nats.url(), subject::DLQ_STREAM).await;
    assert_eq!(first.len(), 2);
    let retried = resolver(&["dlq", "retry", "--all"], &env);
    // MB01 lands; MB02 is gone (404): handled as done, so both leave the DLQ.
    assert_eq!(
        retried.code,
        Some(0),
        "{}{}",
        retried.stdout,
        retried.stderr
    );
    assert!(
        fake.attributes(conversation, "MB01")
            .unwrap()
            .contains("1001")
    );
    assert!(stored(&nats.url(), subject::DLQ_STREAM).await.is_empty());

    // A retry that fails again stays.
    fake.add_participant(conversation, "MB03", "{}");
    fake.fail_next(1, Failure::Status(400, None));
    let added = twilio::participant_added(conversation, "MB03", "+14155550101");
    assert_eq!(ingress.client.post(&added).await.status, 200);
    eventually(WAIT, "a third dead letter", || async {
        (stored(&nats.url(), subject::DLQ_STREAM).await.len() == 1).then_some(())
    })
    .await;
    fake.fail_next(1, Failure::Status(400, None));
    let again = resolver(&["dlq", "retry", "--all"], &env);
    assert_eq!(again.code, Some(1), "{}", again.stdout);
    assert!(again.stdout.contains("still fails"), "{}", again.stdout);
    assert_eq!(stored(&nats.url(), subject::DLQ_STREAM).await.len(), 1);
    let purged = resolver(&["dlq", "purge"], &env);
    assert!(
        purged.stdout.contains("1 dead letter(s) deleted"),
        "{}",
        purged.stdout
    );
    assert!(stored(&nats.url(), subject::DLQ_STREAM).await.is_empty());

    // The other service saw each event once: nothing was published again.
    assert_eq!(stored(&nats.url(), subject::DEFAULT_STREAM).await.len(), 3);
    let info = other.info().await.unwrap();
    assert_eq!(info.num_pending, 3, "{info:?}");
}
