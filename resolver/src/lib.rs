//! The resolver: the horizontally scaled workers of the Frontline event pipeline, where all
//! business logic lives. Each replica joins the `frontline-resolvers` queue group and answers
//! pre-event requests from the customer directory within the ingress's deadline.
//!
//! Layout:
//! - [`config`]: the typed configuration.
//! - [`directory`]: the customer directory, indexed by channel address once at load.
//! - [`rules`]: the pure decisions: the answer to each pre-event.
//! - [`pre`]: the NATS loop that decodes requests, applies [`rules`] and replies.
//! - [`metrics`]: Prometheus metrics on an explicit registry.
#![forbid(unsafe_code)]

pub mod config;
pub mod directory;
pub mod metrics;
pub mod pre;
pub mod rules;

mod run;

pub use config::Config;
pub use run::{RunError, run};
