//! The end-to-end tests, one module per area, linked into one test binary: each test starts its
//! own nats-server (the harness's `NatsServer` guard) and runs the real ingress and resolver.
#![forbid(unsafe_code)]

mod bad_input;
mod callbacks;
mod cluster;
mod deploy;
mod directory_kv;
mod hostile;
mod idempotency;
mod observability;
mod operations;
mod participants;
mod post_events;
mod pre_events;
mod security;
mod signals;
mod signing;
mod spool;
mod trace_context;
mod trouble;
