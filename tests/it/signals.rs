//! The real binaries under signals: SIGTERM to the ingress with hundreds of requests in flight,
//! SIGTERM to a resolver with a participant update in hand, SIGKILL to a resolver under load.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use frontline_shared::subject;
use frontline_tests::fake_twilio::{Failure, FakeTwilio};
use frontline_tests::http::{WebhookClient, admin_get, metric};
use frontline_tests::nats::{NatsServer, free_port};
use frontline_tests::stack::{binary, ready_ingress, responder, run_bounded, stored_bodies};
use frontline_tests::{WAIT, eventually, twilio};
use http::Method;

const CONVERSATION: &str = "CH00000000000000000000000000000888";

/// A binary running as its own process, killed if the test ends first.
pub(crate) struct Process(Child);

impl Process {
    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.0.id()
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the exit; returns the exit code.
    pub(crate) fn wait(mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start(name: &str, env: &[(&str, String)]) -> Process {
    let child = Command::new(binary(name))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    Process(child)
}

/// The real ingress's environment: `nats`, the test signature settings, loopback listeners.
pub(crate) fn ingress_env(
    nats_url: &str,
    port: u16,
    admin_port: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("NATS_URL", nats_url.to_owned()),
        ("PUBLIC_URL", twilio::PUBLIC_URL.to_owned()),
        ("TWILIO_AUTH_TOKEN", twilio::AUTH_TOKEN.to_owned()),
        ("INGRESS_LISTEN", format!("127.0.0.1:{port}")),
        ("INGRESS_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
    ]
}

pub(crate) async fn ready(admin: std::net::SocketAddr) {
    // The process may not listen yet: connection errors count as "not ready".
    let client = WebhookClient::new(admin);
    eventually(WAIT, "/readyz", || {
        let client = client.clone();
        async move {
            let answer = client
                .try_send(Method::GET, "/readyz", &[], bytes::Bytes::new())
                .await
                .ok()?;
            (answer.status == 200).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_ingress_answers_everything_in_flight() {
    let nats = NatsServer::start();
    // Every pre-event is answered only after 800 ms, so requests stay in flight; the answer
    // names the conversation, so a resolver's answer cannot be mistaken for the fallback.
    responder(&nats.url(), Duration::from_millis(800), |_| {
        Some(br#"{"action":"modify","fields":{"friendly_name":"from the resolver"}}"#.to_vec())
    })
    .await;
    let (port, admin_port) = (free_port(), free_port());
    let ingress = start("ingress", &ingress_env(&nats.url(), port, admin_port));
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
    ready(admin).await;
    let client = WebhookClient::new(format!("127.0.0.1:{port}").parse().unwrap());

    let mut requests = Vec::new();
    for i in 0..150 {
        let (pre_client, post_client) = (client.clone(), client.clone());
        requests.push(tokio::spawn(async move {
            (
                "pre",
                i,
                pre_client
                    .try_send_post(&twilio::conversation_add("+14155550101"))
                    .await,
            )
        }));
        requests.push(tokio::spawn(async move {
            let params = twilio::message_added(CONVERSATION, i, &format!("m{i}"));
            ("post", i, post_client.try_send_post(&params).await)
        }));
    }
    // Every pre-event is now waiting on the slow responder.
    eventually(WAIT, "requests in flight", || async {
        let text = admin_get(admin, "/metrics").await.text();
        (metric(&text, "frontline_ingress_in_flight_requests") >= 100.0).then_some(())
    })
    .await;
    ingress.signal("-TERM");

    let mut answered_posts = Vec::new();
    for request in requests {
        let (kind, i, answer) = request.await.unwrap();
        let answer =
            answer.unwrap_or_else(|err| panic!("{kind} {i} sent before SIGTERM failed: {err}"));
        assert_eq!(answer.status, 200, "{kind} {i}");
        if kind == "post" {
            answered_posts.push(format!("m{i}"));
        } else {
            assert_eq!(
                answer.json()["friendly_name"],
                "from the resolver",
                "pre {i} got the fallback, not the resolver's answer"
            );
        }
    }
    assert_eq!(
        ingress.wait(Duration::from_secs(30)),
        Some(0),
        "exit code 0"
    );
    let bodies: Vec<String> = stored_bodies(&nats.url(), subject::DEFAULT_STREAM).await;
    for body in &answered_posts {
        assert!(bodies.contains(body), "{body} answered 200 but not stored");
    }
    // New connections are refused.
    assert!(
        client
            .try_send(Method::GET, "/", &[], bytes::Bytes::new())
            .await
            .is_err()
    );
}

fn resolver_env(
    nats: &NatsServer,
    fake: &FakeTwilio,
    admin_port: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("NATS_URL", nats.url()),
        (
            "CUSTOMER_DIRECTORY",
            format!(
                "file:{}",
                frontline_tests::stack::example_directory().display()
            ),
        ),
        (
            "TEMPLATES",
            format!(
                "file:{}/../deploy/templates.example.json",
                env!("CARGO_MANIFEST_DIR")
            ),
        ),
        ("RESOLVER_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
        ("TWILIO_ACCOUNT_SID", twilio::ACCOUNT_SID.to_owned()),
        ("TWILIO_AUTH_TOKEN", twilio::AUTH_TOKEN.to_owned()),
        ("TWILIO_API_BASE", fake.base_url()),
        ("ACK_WAIT_SECS", "2".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_a_resolver_finishes_the_update_in_hand() {
    let nats = NatsServer::start();
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    let ingress = ready_ingress(&nats.url(), |_| {}).await;
    let admin_port = free_port();
    let resolver = start("resolver", &resolver_env(&nats, &fake, admin_port));
    ready(format!("127.0.0.1:{admin_port}").parse().unwrap()).await;
    fake.add_participant(CONVERSATION, "MB01", "{}");
    fake.fail_next(1, Failure::Hold(Duration::from_millis(1_000)));
    let params = twilio::participant_added(CONVERSATION, "MB01", "+14155550101");
    assert_eq!(ingress.client.post(&params).await.status, 200);
    eventually(WAIT, "the update to start", || async {
        (fake.count(&Method::GET) == 1).then_some(())
    })
    .await;
    resolver.signal("-TERM");
    // Once the admin listener closes, the resolver has its stop signal (the consumer stops
    // pulling on the same one). Sent now, while it finishes MB01: it must not take this on.
    eventually(
        WAIT,
        "the stopping resolver to close its admin port",
        || async {
            std::net::TcpStream::connect(("127.0.0.1", admin_port))
                .is_err()
                .then_some(())
        },
    )
    .await;
    fake.add_participant(CONVERSATION, "MB02", "{}");
    let late = twilio::participant_added(CONVERSATION, "MB02", "+14155550101");
    assert_eq!(ingress.client.post(&late).await.status, 200);
    assert_eq!(resolver.wait(Duration::from_secs(30)), Some(0));
    let attributes = fake.attributes(CONVERSATION, "MB01").unwrap();
    assert!(
        attributes.contains("1001"),
        "the update in hand was finished: {attributes}"
    );
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.path.ends_with("/MB02"))
            .count(),
        0,
        "a stopping resolver pulled a new event"
    );
    // The finished update was acknowledged before the exit: nothing of MB01 comes back, and
    // the late event goes to the next resolver.
    let next_port = free_port();
    let next = start("resolver", &resolver_env(&nats, &fake, next_port));
    ready(format!("127.0.0.1:{next_port}").parse().unwrap()).await;
    eventually(
        WAIT,
        "the late event handled by the next resolver",
        || async {
            fake.attributes(CONVERSATION, "MB02")
                .filter(|attributes| attributes.contains("1001"))
        },
    )
    .await;
    // Past the ack wait (2 s), an unacknowledged MB01 would have been redelivered.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mb01_calls = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/MB01"))
        .count();
    assert_eq!(
        mb01_calls, 2,
        "MB01: one GET and one POST, never redelivered"
    );
    next.signal("-TERM");
    assert_eq!(next.wait(Duration::from_secs(30)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_to_one_resolver_under_load_the_other_answers() {
    let nats = NatsServer::start();
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    let ingress = ready_ingress(&nats.url(), |config| config.pre_event_timeout_ms = 500).await;
    let (first_port, second_port) = (free_port(), free_port());
    let doomed = start("resolver", &resolver_env(&nats, &fake, first_port));
    ready(format!("127.0.0.1:{first_port}").parse().unwrap()).await;
    // The doomed resolver holds an onParticipantAdded, unacknowledged (its REST call hangs).
    fake.add_participant(CONVERSATION, "MB02", "{}");
    fake.fail_next(1, Failure::Hold(Duration::from_secs(60)));
    let params = twilio::participant_added(CONVERSATION, "MB02", "+14155550101");
    assert_eq!(ingress.client.post(&params).await.status, 200);
    eventually(WAIT, "the doomed resolver to hold the update", || async {
        (fake.count(&Method::GET) == 1).then_some(())
    })
    .await;
    let survivor = start("resolver", &resolver_env(&nats, &fake, second_port));
    ready(format!("127.0.0.1:{second_port}").parse().unwrap()).await;

    // A second of requests with both resolvers, the kill, then two seconds more. What is
    // measured: every answer is a 200; at most the requests in the killed resolver's hands at
    // the kill take the fallback; and in the last second, with the dust settled, the survivor
    // alone names every conversation.
    let (mut fallbacks, mut last_second, mut named_in_last_second) = (0, 0, 0);
    let started = Instant::now();
    let mut killed = false;
    while started.elapsed() < Duration::from_secs(3) {
        if !killed && started.elapsed() > Duration::from_secs(1) {
            doomed.signal("-KILL");
            killed = true;
        }
        let answer = ingress
            .client
            .post(&twilio::conversation_add("+14155550101"))
            .await;
        assert_eq!(answer.status, 200);
        let named = answer.text() != "{}";
        if !named {
            fallbacks += 1;
        }
        if started.elapsed() > Duration::from_secs(2) {
            last_second += 1;
            named_in_last_second += usize::from(named);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(last_second > 0, "no request in the last second");
    assert_eq!(
        named_in_last_second, last_second,
        "after the kill the survivor answers every request"
    );
    assert!(
        fallbacks <= 2,
        "at most the requests in hand at the kill take the fallback: {fallbacks}"
    );
    // The update the killed resolver held is redelivered to the survivor.
    eventually(WAIT, "the held update to be redelivered", || async {
        fake.attributes(CONVERSATION, "MB02")
            .filter(|a| a.contains("1001"))
    })
    .await;
    drop(survivor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_ingress_cleanly_and_a_bad_configuration_exits_64() {
    let nats = NatsServer::start();
    let (port, admin_port) = (free_port(), free_port());
    let mut env = vec![
        ("NATS_URL", nats.url()),
        ("INGRESS_LISTEN", format!("127.0.0.1:{port}")),
        ("INGRESS_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}")),
        ("TWILIO_AUTH_TOKEN", twilio::AUTH_TOKEN.to_owned()),
    ];
    // No PUBLIC_URL and no explicit opt-out: refused at start.
    assert_eq!(
        start("ingress", &env).wait(Duration::from_secs(30)),
        Some(64)
    );
    env.push(("PUBLIC_URL", twilio::PUBLIC_URL.to_owned()));
    let ingress = start("ingress", &env);
    ready(format!("127.0.0.1:{admin_port}").parse().unwrap()).await;
    ingress.signal("-INT");
    assert_eq!(ingress.wait(Duration::from_secs(30)), Some(0));
}

/// A password written into `NATS_URL` would be logged at start and shown by `--help`: both
/// binaries refuse it (exit 64, pointing at `NATS_USER`/`NATS_PASSWORD`) and never print it.
#[test]
fn a_password_in_nats_url_is_refused_and_never_printed() {
    const PASSWORD: &str = "s3cret-in-the-url";
    // Port 1: nothing listens there, so even a binary that accepted the URL reaches no server.
    let url = format!("nats://frontline:{PASSWORD}@127.0.0.1:1");
    for name in ["ingress", "resolver"] {
        let run = |args: &[&str]| {
            let mut command = Command::new(binary(name));
            command
                .args(args)
                .env_clear()
                .env("NATS_URL", &url)
                .env("PUBLIC_URL", twilio::PUBLIC_URL)
                .env("TWILIO_AUTH_TOKEN", twilio::AUTH_TOKEN)
                .env("INGRESS_LISTEN", "127.0.0.1:0")
                .env("INGRESS_ADMIN_LISTEN", "127.0.0.1:0")
                .env("RESOLVER_ADMIN_LISTEN", "127.0.0.1:0");
            // A binary that accepted the URL would run on: bounded, then killed and failed.
            run_bounded(command, Duration::from_secs(10))
        };
        let started = run(&[]);
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&started.stdout),
            String::from_utf8_lossy(&started.stderr)
        );
        assert_eq!(started.status.code(), Some(64), "{name}: {printed}");
        assert!(printed.contains("NATS_PASSWORD"), "{name}: {printed}");
        let help = run(&["--help"]);
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        assert!(help.contains("NATS_URL"), "{name} --help: {help}");
        for output in [&printed, &help] {
            assert!(
                !output.contains(PASSWORD),
                "{name} printed the password: {output}"
            );
        }
    }
}

/// Under systemd (`Type=notify`, the shipped units) each binary says `READY=1` once it serves
/// and `STOPPING=1` when SIGTERM starts its graceful stop, on the socket named by
/// `NOTIFY_SOCKET`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_binaries_notify_systemd_when_ready_and_when_stopping() {
    let nats = NatsServer::start();
    let fake = FakeTwilio::start(twilio::ACCOUNT_SID, twilio::AUTH_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let next_message = || async {
        let mut buffer = vec![0; 4096];
        let length = tokio::time::timeout(WAIT, socket.recv(&mut buffer))
            .await
            .expect("a notification in time")
            .unwrap();
        String::from_utf8(buffer[..length].to_vec()).unwrap()
    };
    let notify = ("NOTIFY_SOCKET", socket_path.display().to_string());

    let (port, admin_port) = (free_port(), free_port());
    let mut env = ingress_env(&nats.url(), port, admin_port);
    env.push(notify.clone());
    let ingress = start("ingress", &env);
    let ready_message = next_message().await;
    assert!(
        ready_message.lines().any(|line| line == "READY=1"),
        "{ready_message}"
    );
    // READY=1 means serving: both listeners answer at once.
    let admin = format!("127.0.0.1:{admin_port}").parse().unwrap();
    assert_eq!(admin_get(admin, "/livez").await.status, 200);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    ingress.signal("-TERM");
    let stopping = next_message().await;
    assert!(
        stopping.lines().any(|line| line == "STOPPING=1"),
        "{stopping}"
    );
    assert_eq!(ingress.wait(Duration::from_secs(30)), Some(0));

    let mut env = resolver_env(&nats, &fake, free_port());
    env.push(notify);
    let resolver = start("resolver", &env);
    let ready_message = next_message().await;
    assert!(
        ready_message.lines().any(|line| line == "READY=1"),
        "{ready_message}"
    );
    resolver.signal("-TERM");
    let stopping = next_message().await;
    assert!(
        stopping.lines().any(|line| line == "STOPPING=1"),
        "{stopping}"
    );
    assert_eq!(resolver.wait(Duration::from_secs(30)), Some(0));
}

/// A `NOTIFY_SOCKET` that nothing listens on is logged, never fatal: the ingress serves and
/// stops cleanly all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_notify_socket_does_not_stop_the_ingress() {
    let nats = NatsServer::start();
    let (port, admin_port) = (free_port(), free_port());
    let mut env = ingress_env(&nats.url(), port, admin_port);
    env.push(("NOTIFY_SOCKET", "/nonexistent/notify".to_owned()));
    let ingress = start("ingress", &env);
    ready(format!("127.0.0.1:{admin_port}").parse().unwrap()).await;
    ingress.signal("-TERM");
    assert_eq!(ingress.wait(Duration::from_secs(30)), Some(0));
}
