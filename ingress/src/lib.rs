//! The ingress: a thin, stateless HTTP front for Twilio Conversations webhooks. It verifies each
//! request's signature, classifies the event, and either asks the resolvers over NATS
//! request/reply (pre-events, answered within Twilio's 5 s budget) or stores the event in
//! JetStream and answers only after the PubAck (post-events). No business logic lives here.
//!
//! Layout:
//! - [`config`]: the typed configuration, from flags and environment variables.
//! - [`signature`]: Twilio's `X-Twilio-Signature`, pure, with the SDKs' golden vectors.
//! - [`webhook`]: turning a raw HTTP request into a verified [`webhook::Webhook`].
//! - [`token_bucket`]: auth tokens per account from a watched NATS KV bucket.
//! - `handler`: routing and the answer to each webhook.
//! - `broker`: the one seam to NATS (a small trait) and its NATS implementation.
//! - `cache`: the pre-event answer cache for Twilio's retries.
//! - `callback`: Frontline's callbacks (asked of the resolvers, or stored for routing).
//! - `error`, `response`: the one error enum and the one place it becomes a status code; the
//!   shapes of an answer.
//! - `metrics`: Prometheus metrics on an explicit registry.
//! - `spool`: the optional local write-ahead spool for long NATS outages (`SPOOL_DIR`).
//! - `run`: wiring, and shutdown in order.
//!
//! What both binaries run on (NATS connection, telemetry, the admin listener, signals) is in
//! `frontline-runtime`; the wire contract is `frontline-shared`.
#![forbid(unsafe_code)]

pub mod config;
pub mod response;
pub mod signature;
pub mod token_bucket;
pub mod webhook;

mod broker;
mod cache;
mod callback;
mod error;
mod handler;
mod metrics;
mod run;
mod spool;

pub use config::Config;
pub use error::Rejection;
pub use run::{RunError, run};
