//! The resolver: the horizontally scaled workers of the Frontline event pipeline, where all
//! business logic lives. Each replica joins the `frontline-resolvers` queue group and answers
//! pre-event requests from the customer directory within the ingress's deadline, and all of them
//! share one durable JetStream consumer that sets Frontline's participant attributes through the
//! Twilio REST API for every `onParticipantAdded`.
//!
//! Layout:
//! - [`config`]: the typed configuration.
//! - [`directory`]: the customer directory, indexed by channel address once at load.
//! - [`kv`]: the directory in a NATS KV bucket, watched, and the import command.
//! - [`rules`]: the pure decisions: the answer to each pre-event.
//! - [`pre`]: the NATS loop that decodes requests, applies [`rules`] and replies.
//! - [`enrich`]: the pure part of the `onParticipantAdded` rule (who, and the merged attributes).
//! - [`twilio`]: the Twilio Conversations REST client.
//! - [`participants`]: the durable consumer that applies [`enrich`] through [`twilio`].
//! - [`metrics`]: Prometheus metrics on an explicit registry.
#![forbid(unsafe_code)]

pub mod config;
pub mod directory;
pub mod enrich;
pub mod kv;
pub mod metrics;
pub mod participants;
pub mod pre;
pub mod rules;
pub mod twilio;

mod run;

pub use config::Config;
pub use run::{RunError, import_directory, run};
