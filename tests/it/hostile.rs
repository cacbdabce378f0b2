//! Hostile input and misbehaving clients: every request gets a clear 4xx or a correct answer,
//! never a 5xx or a crash; slow and idle clients cannot hold connections; the connection cap holds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use frontline_shared::subject;
use frontline_tests::http::{WEBHOOK_PATH, form_encode};
use frontline_tests::stack::{Stack, stored};
use frontline_tests::twilio;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONVERSATION: &str = "CH00000000000000000000000000000666";

fn signature_for(params: &[(String, String)]) -> String {
    twilio::sign(
        twilio::AUTH_TOKEN,
        &format!("{}{WEBHOOK_PATH}", twilio::PUBLIC_URL),
        params,
    )
}

/// Sends raw bytes and reads until the server closes (or `within` passes); returns what came
/// back and how long the server kept the connection.
async fn raw(addr: SocketAddr, request: &[u8], within: Duration) -> (String, Duration, bool) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
        closed,
    )
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn malformed_encodings_get_a_clear_answer() {
    let stack = Stack::start().await;
    let client = stack.client();
    // Invalid percent-encoding is taken literally (as Twilio's own parsers do): signed, stored.
    let literal = vec![
        ("EventType".to_owned(), "onMessageAdded".to_owned()),
        ("ConversationSid".to_owned(), CONVERSATION.to_owned()),
        ("Body".to_owned(), "100%ZZ%".to_owned()),
    ];
    let body = format!("EventType=onMessageAdded&ConversationSid={CONVERSATION}&Body=100%ZZ%");
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Twilio-Signature", &signature_for(&literal)),
    ];
    let answer = client
        .send(Method::POST, WEBHOOK_PATH, &headers, Bytes::from(body))
        .await;
    assert_eq!(answer.status, 200);
    // Invalid UTF-8 cannot carry Twilio's signature: 403, never a 5xx.
    let answer = client
        .send(
            Method::POST,
            WEBHOOK_PATH,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", "AAAA"),
            ],
            Bytes::from_static(b"EventType=onMessageAdded&Body=%FF%FE\xff\xfe"),
        )
        .await;
    assert_eq!(answer.status, 403);
    // An empty, correctly signed body has no EventType: 400.
    let answer = client
        .send(
            Method::POST,
            WEBHOOK_PATH,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", &signature_for(&[])),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(answer.status, 400);
    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].envelope.params.get("Body"), Some("100%ZZ%"));
}

#[tokio::test]
async fn ten_thousand_parameters_and_many_repeats() {
    let stack = Stack::start_with(|config| config.max_body_bytes = 1 << 20).await;
    let mut params = twilio::event("onMessageAdded", &[("ConversationSid", CONVERSATION)]);
    params.extend((0..10_000).map(|i| (format!("P{i}"), format!("v{i}"))));
    params.extend((0..500).map(|i| ("Repeated".to_owned(), format!("r{}", i % 7))));
    let answer = stack.client().post(&params).await;
    assert_eq!(answer.status, 200);
    let messages = stored(&stack.nats.url(), subject::DEFAULT_STREAM).await;
    assert_eq!(messages[0].envelope.params.get("P9999"), Some("v9999"));
    // 500 values of which 7 differ: exact repeats are kept once (Twilio signs them once).
    assert_eq!(messages[0].envelope.params.get_all("Repeated").count(), 7);
    // Over the default limit the same request is refused with 413, not truncated.
    let stack = Stack::start().await;
    assert_eq!(stack.client().post(&params).await.status, 413);
}

#[tokio::test]
async fn huge_headers_non_ascii_urls_and_chunked_bodies_over_the_limit() {
    let stack = Stack::start_with(|config| config.max_body_bytes = 1_024).await;
    let addr = stack.ingress.addr;
    let huge = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(200_000)
    );
    let (answer, _, _) = raw(addr, huge.as_bytes(), Duration::from_secs(5)).await;
    let status = status_of(&answer);
    // An answer, and a refusal: silence or a hang fails here.
    assert!(
        (400..500).contains(&status),
        "a huge header must get a 4xx within 5 s, got {:?}",
        &answer[..answer.len().min(200)]
    );

    let utf8 = "GET /webhooks/conversations?a\u{f1}o=2023 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (answer, _, _) = raw(addr, utf8.as_bytes(), Duration::from_secs(5)).await;
    let status = status_of(&answer);
    assert!((400..500).contains(&status), "{answer}");

    // A chunked body (no Content-Length) is cut off while reading: 413.
    let chunk = "x".repeat(600);
    let chunked = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    let (answer, _, _) = raw(addr, chunked.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&answer), 413, "{answer}");
    let params = vec![("EventType".to_owned(), "onMessageAdded".to_owned())];
    let body = form_encode(&params);
    assert_eq!(
        stack
            .client()
            .post_form(
                WEBHOOK_PATH,
                &params,
                &[("X-Twilio-Signature", &signature_for(&params))]
            )
            .await
            .status,
        200,
        "{body}"
    );
}

#[tokio::test]
async fn slow_and_idle_clients_are_cut_off() {
    let stack = Stack::start_with(|config| config.request_read_timeout_secs = 1).await;
    let addr = stack.ingress.addr;
    // Slowloris: half a request line and headers, then nothing.
    let (_, held, closed) = raw(
        addr,
        format!("POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\n").as_bytes(),
        Duration::from_secs(8),
    )
    .await;
    assert!(
        closed,
        "a client that never finishes its headers is disconnected"
    );
    assert!(held < Duration::from_secs(5), "held for {held:?}");
    // Idle: connect and send nothing at all.
    let (_, held, closed) = raw(addr, b"", Duration::from_secs(8)).await;
    assert!(
        closed && held < Duration::from_secs(5),
        "an idle connection is closed (held {held:?})"
    );
}

#[tokio::test]
async fn the_connection_cap_holds() {
    let stack = Stack::start_with(|config| config.max_connections = 2).await;
    let addr = stack.ingress.addr;
    // Two connections that the ingress has accepted and served (so it holds them open).
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut connection = TcpStream::connect(addr).await.unwrap();
        connection
            .write_all(b"GET /webhooks/conversations HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(5), connection.read_exact(&mut head))
            .await
            .expect("an answer on an accepted connection")
            .unwrap();
        assert!(head.starts_with(b"HTTP/1.1 4"), "{head:?}");
        open.push(connection);
    }
    let (answer, held, closed) = raw(
        addr,
        b"GET /webhooks/conversations HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(
        closed && answer.is_empty(),
        "a third connection is closed at once ({answer:?}, {held:?})"
    );
    drop(open);
    // Once they are gone, connections are served again.
    frontline_tests::eventually(frontline_tests::WAIT, "a served connection", || async {
        let (answer, _, _) = raw(
            addr,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(2),
        )
        .await;
        (status_of(&answer) == 404).then_some(())
    })
    .await;
}

/// Resident memory of a process, from `/proc`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmRSS")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_and_big_headers_cannot_hold_the_listener() {
    use super::signals::{ingress_env, ready, start};
    use frontline_tests::nats::{NatsServer, free_port};

    const CONNECTIONS: usize = 200;
    let nats = NatsServer::start();
    let (port, admin_port) = (free_port(), free_port());
    let mut env = ingress_env(&nats.url(), port, admin_port);
    env.push(("REQUEST_READ_TIMEOUT_SECS", "2".to_owned()));
    let ingress = start("ingress", &env);
    ready(format!("127.0.0.1:{admin_port}").parse().unwrap()).await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let rss_before = rss_bytes(ingress.id());

    // A head just under the 16 KiB cap, then a body promised at 60 KB and sent a byte at a time.
    let head = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(15_000)
    );
    let started = Instant::now();
    let mut attackers = Vec::new();
    for _ in 0..CONNECTIONS {
        let head = head.clone();
        attackers.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let mut buffer = [0u8; 1024];
            // Drip the body until the ingress answers and closes (or 15 s pass).
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                let _ = stream.write_all(b"a").await;
                match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer))
                    .await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => return (answer, true, started.elapsed()),
                    Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
                    Err(_) => {}
                }
            }
            (answer, false, started.elapsed())
        }));
    }
    // While they drip, the ingress's memory stays small.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let rss_during = rss_bytes(ingress.id());
    let mut latest = Duration::ZERO;
    for attacker in attackers {
        let (answer, closed, at) = attacker.await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(closed, "a slow body held its connection for 15 s");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        latest = latest.max(at);
    }
    assert!(
        latest < Duration::from_secs(6),
        "the last slow body was cut off after {latest:?} (limit 2 s)"
    );
    assert!(
        rss_during < rss_before + 40 * 1024 * 1024,
        "{CONNECTIONS} slow connections took the ingress from {rss_before} to {rss_during} bytes"
    );

    // A head over 16 KiB is refused outright.
    let big = format!(
        "GET {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(17 * 1024)
    );
    let (answer, _, closed) = raw(addr, big.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(
        status_of(&answer),
        431,
        "{}",
        &answer[..answer.len().min(100)]
    );
    assert!(closed, "the connection is closed after a 431");

    // And the listener still serves.
    let client = frontline_tests::http::WebhookClient::new(addr);
    let params = twilio::message_added("CH1", 1, "after the attack");
    assert_eq!(client.post(&params).await.status, 200);
}
