//! What both binaries of the Frontline event pipeline run on, and nothing else: no business
//! logic, no Twilio, no webhook. The ingress and the resolver each stand on this crate and on the
//! wire contract (`frontline-shared`), never on each other.
//!
//! Layout:
//! - [`nats`]: NATS connection settings (`NATS_URL` and credentials), a client that reconnects by
//!   itself, KV buckets, and the round trip that proves the server has what was sent.
//! - [`telemetry`]: logging, W3C trace context, optional OTLP export.
//! - [`secret`]: secrets whose `Debug` and `Display` print `[redacted]`.
//! - [`server`]: the HTTP/1.1 accept loop with limits and graceful shutdown.
//! - [`admin`]: the admin listener (`/metrics`, `/livez`, `/readyz`).
//! - [`signal`]: the one shutdown future for SIGINT and SIGTERM.
//! - [`metrics`]: latency buckets, the `other` label, process metrics.
//! - [`exit`]: exit code 64 for an unusable configuration.
#![forbid(unsafe_code)]

pub mod admin;
pub mod exit;
pub mod metrics;
pub mod nats;
pub mod secret;
pub mod server;
pub mod signal;
pub mod systemd;
pub mod telemetry;
