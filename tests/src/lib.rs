//! The end-to-end harness: a real `nats-server` per test (random port, JetStream, a temporary
//! store), the real ingress and resolver `run` functions on port 0, a Twilio signer written from
//! Twilio's description (independent of the ingress's verifier), and a small HTTP client.
//!
//! Layout:
//! - [`nats`]: the [`nats::NatsServer`] guard.
//! - [`fake_twilio`]: a local stand-in for Twilio's Conversations REST API.
//! - [`stack`]: spawners for the ingress and the resolver.
//! - [`twilio`]: signing webhooks the way Twilio does, and realistic parameter sets.
//! - [`http`]: a client that sends webhooks and reads answers.
//! - [`tls`]: a test certificate authority and a server certificate.
#![forbid(unsafe_code)]

pub mod fake_twilio;
pub mod http;
pub mod nats;
pub mod stack;
pub mod tls;
pub mod twilio;

use std::future::Future;
use std::time::Duration;

/// Every network await in the tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// Polls `check` until it returns `Some`, or panics after `within` with `what`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
