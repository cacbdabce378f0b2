//! The local spool (`SPOOL_DIR`): when NATS stays down past `PUBLISH_BUDGET_MS`, post-events are
//! appended to a write-ahead file and answered 200; they reach the stream, once each, when NATS
//! is back, even after the ingress itself was killed (SIGKILL) mid-outage and restarted.

use std::time::Duration;

use frontline_shared::subject;
use frontline_tests::http::{WebhookClient, admin_get, metric};
use frontline_tests::nats::{NatsServer, free_port};
use frontline_tests::stack::{ready_ingress, stored_bodies};
use frontline_tests::{WAIT, eventually, twilio};

use super::signals::{ingress_env, start};

const CONVERSATION: &str = "CH00000000000000000000000000000555";

async fn alive(admin: std::net::SocketAddr) {
    eventually(WAIT, "/livez", || async {
        WebhookClient::new(admin)
            .try_send(http::Method::GET, "/livez", &[], bytes::Bytes::new())
            .await
            .ok()
            .filter(|answer| answer.status == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_events_survive_a_sigkill_and_are_stored_once() {
    let mut nats = NatsServer::start();
    let spool = tempfile::tempdir().unwrap();
    let nats_url = nats.url();
    let launch = || {
        let (port, admin_port) = (free_port(), free_port());
        let mut env = ingress_env(&nats_url, port, admin_port);
        env.push(("SPOOL_DIR", spool.path().display().to_string()));
        env.push(("PUBLISH_BUDGET_MS", "300".to_owned()));
        let process = start("ingress", &env);
        let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
        let client = WebhookClient::new(format!("127.0.0.1:{port}").parse().unwrap());
        (process, admin, client)
    };
    let (first, admin, client) = launch();
    super::signals::ready(admin).await;
    let post = |client: WebhookClient, index: u32| async move {
        client
            .post(&twilio::message_added(
                CONVERSATION,
                index,
                &format!("m{index}"),
            ))
            .await
            .status
    };
    assert_eq!(post(client.clone(), 0).await, 200, "stored directly");
    nats.stop();
    for index in 1..=4 {
        assert_eq!(post(client.clone(), index).await, 200, "m{index} spooled");
    }
    first.signal("-KILL");
    let _ = first.wait(Duration::from_secs(10));

    let (second, admin, client) = launch();
    alive(admin).await;
    for index in 5..=6 {
        assert_eq!(post(client.clone(), index).await, 200, "m{index} spooled");
    }
    let text = admin_get(admin, "/metrics").await.text();
    assert_eq!(
        metric(&text, "frontline_ingress_spool_depth"),
        6.0,
        "{text}"
    );
    assert!(metric(&text, "frontline_ingress_spool_bytes") > 0.0);

    nats.restart();
    let want: Vec<String> = (0..=6).map(|i| format!("m{i}")).collect();
    eventually(
        Duration::from_secs(20),
        "every event stored once",
        || async {
            let mut bodies: Vec<String> = stored_bodies(&nats.url(), subject::DEFAULT_STREAM).await;
            bodies.sort();
            (bodies == want).then_some(())
        },
    )
    .await;
    eventually(WAIT, "an empty spool", || async {
        let text = admin_get(admin, "/metrics").await.text();
        (metric(&text, "frontline_ingress_spool_depth") == 0.0).then_some(())
    })
    .await;
    second.signal("-TERM");
    assert_eq!(second.wait(Duration::from_secs(30)), Some(0));
}

#[tokio::test]
async fn the_spool_is_capped_and_measured() {
    let mut nats = NatsServer::start();
    let spool = tempfile::tempdir().unwrap();
    let ingress = ready_ingress(&nats.url(), |config| {
        config.spool_dir = Some(spool.path().to_owned());
        config.spool_max_bytes = 4_000;
        config.publish_budget_ms = 200;
    })
    .await;
    nats.stop();
    let (mut spooled, mut refused) = (0, 0);
    for index in 0..20 {
        let answer = ingress
            .client
            .post(&twilio::message_added(CONVERSATION, index, "x"))
            .await;
        match answer.status.as_u16() {
            200 => spooled += 1,
            503 => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert!(
        spooled > 0 && refused > 0,
        "{spooled} spooled, {refused} refused"
    );
    let text = admin_get(ingress.admin, "/metrics").await.text();
    assert_eq!(
        metric(&text, "frontline_ingress_spool_depth"),
        f64::from(spooled)
    );
    assert_eq!(
        metric(&text, "frontline_ingress_spooled_total"),
        f64::from(spooled)
    );
    assert!(
        metric(&text, "frontline_ingress_spool_bytes") <= 4_000.0,
        "{text}"
    );
    nats.restart();
}
