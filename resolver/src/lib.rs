//! The resolver: the horizontally scaled workers of the Frontline event pipeline, where all
//! business logic lives. Each replica joins the `frontline-resolvers` queue group and answers
//! pre-event requests from the customer directory within the ingress's deadline, and all of them
//! share one durable JetStream consumer that sets Frontline's participant attributes through the
//! Twilio REST API for every `onParticipantAdded`.
//!
//! Layout, by feature:
//! - [`config`]: the typed configuration and the subcommands.
//! - [`directory`]: the customer directory, indexed by channel address, from a file or a watched
//!   NATS KV bucket ([`directory::kv`], with the import command).
//! - [`pre`]: the pre-event loop; [`pre::rules`] holds the pure decisions.
//! - [`callbacks`]: Frontline's CRM, outgoing-conversation and templates callbacks (the pure
//!   answers in [`callbacks::answers`]).
//! - [`consumer`]: a durable consumer shared by the replicas, with retries and dead letters,
//!   running a job on each message:
//!   - [`participants`]: enriches customer participants (its pure part in
//!     `participants::enrich`);
//!   - [`routing`]: adds the customer's worker to a new conversation.
//! - [`attributes`]: the one rule for adding values to Twilio attributes.
//! - [`twilio`]: the Twilio Conversations REST client.
//! - [`metrics`]: Prometheus metrics on an explicit registry.
//! - [`ops`]: the operations commands (`twilio-setup`, `doctor`, `dlq`).
//! - `run`: wiring and readiness.
#![forbid(unsafe_code)]

pub mod attributes;
pub mod callbacks;
pub mod config;
pub mod consumer;
pub mod directory;
pub mod metrics;
pub mod ops;
pub mod participants;
pub mod pre;
pub mod routing;
pub mod twilio;

mod run;

pub use config::Config;
pub use run::{RunError, run};
