//! The wire contract between the ingress, the resolvers and every other consumer of the
//! Frontline event pipeline. Nothing here is async or talks to a network: these are the types
//! and names that travel over NATS, so every service can depend on them.
//!
//! Layout:
//! - [`event`]: the table of Twilio Conversations event types, pre-action or post-action.
//! - [`envelope`]: the JSON payload of every NATS message the ingress sends.
//! - [`events`]: [`events::ConversationEvent`], typed events parsed from an envelope.
//! - [`reply`]: the resolvers' answer to a pre-event request.
//! - [`subject`]: subject builders, the token sanitiser, stream, consumer and queue names.
//! - [`headers`]: NATS header names.
//! - [`customer`]: the Frontline customer record of the customer directory.
#![forbid(unsafe_code)]

pub mod customer;
pub mod envelope;
pub mod event;
pub mod events;
pub mod headers;
pub mod reply;
pub mod subject;

pub use customer::{Channel, Customer};
pub use envelope::{Envelope, EnvelopeRef, ParamValue, Params};
pub use event::{EventKind, EventType};
pub use events::ConversationEvent;
pub use reply::{Modification, PreReply};
