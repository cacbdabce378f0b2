//! The ingress: a thin, stateless HTTP front for Twilio Conversations webhooks. It verifies each
//! request's signature, classifies the event, and either asks the resolvers over NATS
//! request/reply (pre-events, answered within Twilio's 5 s budget) or stores the event in
//! JetStream and answers only after the PubAck (post-events). No business logic lives here.
//!
//! Layout:
//! - [`config`]: the typed configuration, from flags and environment variables.
//! - [`signature`]: Twilio's `X-Twilio-Signature`, pure, with the SDKs' golden vectors.
//! - [`webhook`]: turning a raw HTTP request into a verified [`webhook::Webhook`].
//! - [`broker`]: the one seam to NATS (a small trait) and its NATS implementation.
//! - [`handler`]: routing and the answer to each webhook.
//! - [`error`]: the one error enum and the one place it becomes a status code.
//! - [`metrics`]: Prometheus metrics on an explicit registry.
//! - [`server`]: the HTTP accept loop with graceful shutdown, shared with the admin listener.
//! - [`admin`]: `/metrics`, `/livez`, `/readyz`.
//! - [`nats`], [`secret`], [`telemetry`]: connection settings, redacted secrets, logging and
//!   trace context; the resolver uses them too.
#![forbid(unsafe_code)]

pub mod admin;
pub mod broker;
pub mod config;
pub mod error;
pub mod handler;
pub mod metrics;
pub mod nats;
pub mod secret;
pub mod server;
pub mod signature;
pub mod telemetry;
pub mod webhook;

mod run;

pub use config::Config;
pub use run::{RunError, run};
