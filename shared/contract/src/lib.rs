//! The wire contract between the ingress, the resolvers and every other consumer of the
//! Frontline event pipeline. Nothing here is async or talks to a network: these are the types
//! and names that travel over NATS, so every service can depend on them (serde and serde_json
//! are its only dependencies).
//!
//! Layout:
//! - [`event_type`]: the table of Twilio Conversations event types, pre-action or post-action.
//! - [`envelope`]: the JSON payload of every NATS message the ingress sends.
//! - [`conversation_event`]: [`ConversationEvent`], typed events parsed from an envelope.
//! - [`reply`]: the resolvers' answer to a pre-event request.
//! - [`callback`]: Frontline's callback routes and the resolvers' answer to them.
//! - [`subject`]: subject builders and parsers, the token sanitiser, stream, consumer and queue
//!   names.
//! - [`headers`]: NATS header names, and the encoding of the values both sides read.
//! - [`customer`]: the Frontline customer record of the customer directory.
#![forbid(unsafe_code)]

pub mod callback;
pub mod conversation_event;
pub mod customer;
pub mod envelope;
pub mod event_type;
pub mod headers;
pub mod reply;
pub mod subject;

pub use callback::{CallbackReply, CallbackRoute};
pub use conversation_event::ConversationEvent;
pub use customer::{Channel, Customer};
pub use envelope::{Envelope, EnvelopeRef, ParamValue, Params};
pub use event_type::{EventKind, EventType};
pub use reply::{Modification, PreReply};
