//! Metrics as the on-call engineer sees them: exact counts after a scripted mix, bounded series
//! under junk input, and the shipped alert rules and dashboard checked against what the binaries
//! really export.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use frontline_shared::subject;
use frontline_tests::http::{WEBHOOK_PATH, admin_get, metric};
use frontline_tests::stack::{Stack, stored};
use frontline_tests::twilio;

const CONVERSATION: &str = "CH00000000000000000000000000000555";

fn ingress_series(event_type: &str, outcome: &str) -> String {
    format!(r#"frontline_ingress_requests_total{{event_type="{event_type}",outcome="{outcome}"}}"#)
}

fn resolver_series(event_type: &str, outcome: &str) -> String {
    format!(r#"frontline_resolver_messages_total{{event_type="{event_type}",outcome="{outcome}"}}"#)
}

#[tokio::test]
async fn a_scripted_mix_is_counted_exactly() {
    let stack = Stack::start().await;
    let client = stack.client().clone();
    for address in ["+14155550101", "+14155550102", "+19995550000"] {
        assert_eq!(
            client.post(&twilio::conversation_add(address)).await.status,
            200
        );
    }
    assert_eq!(
        client
            .post(&twilio::event(
                "onMessageAdd",
                &[("ConversationSid", CONVERSATION)]
            ))
            .await
            .status,
        200
    );
    let forged = twilio::message_added(CONVERSATION, 1, "forged");
    assert_eq!(
        client
            .post_form(WEBHOOK_PATH, &forged, &[("X-Twilio-Signature", "AAAA")])
            .await
            .status,
        403
    );
    assert_eq!(
        client
            .post(&twilio::message_added(CONVERSATION, 1, "one"))
            .await
            .status,
        200
    );
    assert_eq!(
        client
            .post(&twilio::message_added(CONVERSATION, 2, "two"))
            .await
            .status,
        200
    );
    assert_eq!(
        client
            .post(&twilio::message_added(CONVERSATION, 2, "two"))
            .await
            .status,
        200
    );

    let resolver = admin_get(stack.resolver.admin, "/metrics").await.text();
    stack.resolver.stop().await;
    // No resolver left: the fallback.
    assert_eq!(
        client
            .post(&twilio::conversation_add("+14155550101"))
            .await
            .text(),
        "{}"
    );

    let ingress = admin_get(stack.ingress.admin, "/metrics").await.text();
    let expected = [
        (ingress_series("onConversationAdd", "modified"), 3.0),
        (ingress_series("onConversationAdd", "fallback"), 1.0),
        (ingress_series("onMessageAdd", "accepted"), 1.0),
        (ingress_series("other", "bad_signature"), 1.0),
        (ingress_series("onMessageAdded", "published"), 2.0),
        (ingress_series("onMessageAdded", "duplicate"), 1.0),
        (ingress_series("onConversationAdd", "accepted"), 0.0),
        (ingress_series("onMessageAdded", "publish_failed"), 0.0),
        (
            r#"frontline_ingress_request_duration_seconds_count{kind="pre"}"#.to_owned(),
            5.0,
        ),
        (
            r#"frontline_ingress_request_duration_seconds_count{kind="post"}"#.to_owned(),
            3.0,
        ),
        (
            "frontline_ingress_nats_request_duration_seconds_count".to_owned(),
            5.0,
        ),
        ("frontline_ingress_in_flight_requests".to_owned(), 0.0),
    ];
    for (series, value) in expected {
        assert_eq!(metric(&ingress, &series), value, "{series}");
    }
    let total: f64 = ingress
        .lines()
        .filter(|line| line.starts_with("frontline_ingress_requests_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 9.0, "every request is counted exactly once");

    let expected = [
        (resolver_series("onConversationAdd", "modified"), 3.0),
        (resolver_series("onMessageAdd", "accepted"), 1.0),
        (
            r#"frontline_resolver_directory_lookups_total{result="hit"}"#.to_owned(),
            2.0,
        ),
        (
            r#"frontline_resolver_directory_lookups_total{result="miss"}"#.to_owned(),
            1.0,
        ),
        (
            r#"frontline_resolver_handle_duration_seconds_count{event_type="onConversationAdd"}"#
                .to_owned(),
            3.0,
        ),
    ];
    for (series, value) in expected {
        assert_eq!(metric(&resolver, &series), value, "{series}");
    }
}

#[tokio::test]
async fn a_flood_of_junk_event_types_adds_no_series() {
    let stack = Stack::start().await;
    let count_series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    let before = count_series(&admin_get(stack.ingress.admin, "/metrics").await.text());
    for i in 0..200 {
        let junk = format!("onJunk{i}.*.>");
        assert_eq!(
            stack
                .client()
                .post(&twilio::event(&junk, &[("ConversationSid", CONVERSATION)]))
                .await
                .status,
            200
        );
    }
    let after_text = admin_get(stack.ingress.admin, "/metrics").await.text();
    assert_eq!(count_series(&after_text), before, "no new series");
    assert_eq!(
        metric(&after_text, &ingress_series("other", "published")),
        200.0
    );
    assert_eq!(
        stored(&stack.nats.url(), subject::DEFAULT_STREAM)
            .await
            .len(),
        200
    );
}

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// Every `frontline_*` and `process_*` name in `text`.
fn referenced_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["frontline_", "process_"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            let preceded_by_word = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if !preceded_by_word {
                names.insert(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    names
}

#[tokio::test]
async fn alert_rules_and_dashboard_use_only_exported_metrics() {
    let stack = Stack::start().await;
    let mut exported = BTreeSet::new();
    for admin in [stack.ingress.admin, stack.resolver.admin] {
        let text = admin_get(admin, "/metrics").await.text();
        exported.extend(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split(['{', ' ']).next())
                .map(str::to_owned),
        );
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("deploy/grafana/frontline.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let mut exprs = String::new();
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push_str(target["expr"].as_str().expect("an expr"));
            exprs.push('\n');
        }
    }
    let alerts = std::fs::read_to_string(repo_file("deploy/prometheus/alerts.yml")).unwrap();
    for (source, text) in [("dashboard", &exprs), ("alerts", &alerts)] {
        let names = referenced_names(text);
        assert!(names.len() >= 3, "{source}: {names:?}");
        for name in names {
            assert!(
                exported.contains(&name),
                "{source} uses {name}, which no binary exports"
            );
        }
    }
    for name in [
        "frontline_resolver_consumer_pending",
        "frontline_resolver_consumer_ack_pending",
    ] {
        assert!(exported.contains(name), "{name}");
    }
}

#[test]
fn promtool_accepts_the_rules_and_the_scrape_config() {
    let dir = repo_file("deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["check", "config", "prometheus.yml"],
        ["check", "config", "compose.yml"],
    ] {
        let output = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool must be installed (deploy/test.sh installs the prometheus package)");
        assert!(
            output.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
