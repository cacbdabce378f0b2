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
    assert_eq!(messages[0].envelope.params.get_all("Repeated").count(), 500);
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
    let stack = Stack::start_with(|config| config.header_read_timeout_secs = 1).await;
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
