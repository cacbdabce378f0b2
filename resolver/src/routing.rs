//! Frontline's custom routing, a [`Job`] of the durable consumer `frontline-router` on
//! `<prefix>.routing.>` that every replica shares (see [`crate::consumer`] for delivery, retries
//! and dead letters). Frontline does not read the routing callback's answer: the service adds the
//! worker itself. The customer is found by `MessagingBinding.Address`; the worker is the
//! customer's `worker`, else `ROUTING_FALLBACK_WORKER`; it is added to the conversation over
//! REST. A worker already there (409) is done; no worker at all is acknowledged and counted
//! `unrouted`.

use std::sync::Arc;

use frontline_runtime::telemetry;
use frontline_shared::Envelope;

use crate::consumer::{Job, Verdict};
use crate::directory::{CustomerDirectory, Lookup};
use crate::metrics::{Outcome, ResolverMetrics};
use crate::twilio::{TwilioClient, TwilioError};

/// The routing job.
#[derive(Debug, Clone)]
pub struct Router {
    /// The REST client.
    pub twilio: TwilioClient,
    /// The customer directory.
    pub directory: Arc<dyn CustomerDirectory>,
    /// `ROUTING_FALLBACK_WORKER`.
    pub fallback_worker: Option<String>,
    /// Metrics.
    pub metrics: ResolverMetrics,
}

impl Job for Router {
    async fn run(&self, payload: &[u8], traceparent: &str) -> Verdict {
        let envelope = match Envelope::from_slice(payload) {
            Ok(envelope) => envelope,
            Err(err) => return Verdict::DeadLetter(format!("undecodable envelope: {err}")),
        };
        let Some(conversation) = envelope.params.non_empty("ConversationSid") else {
            return Verdict::DeadLetter("no ConversationSid".into());
        };
        let Some(worker) = self.worker_for(&envelope) else {
            tracing::warn!(
                conversation_sid = %telemetry::cut(conversation),
                "no worker for the conversation (no customer worker, no ROUTING_FALLBACK_WORKER)"
            );
            return Verdict::Done(Outcome::Skipped);
        };
        match self
            .twilio
            .add_participant(conversation, &worker, Some(traceparent))
            .await
        {
            Ok(()) => {
                tracing::info!(conversation_sid = %telemetry::cut(conversation), worker = %telemetry::cut(&worker), "conversation routed");
                Verdict::Done(Outcome::Modified)
            }
            Err(TwilioError::Conflict) => Verdict::Done(Outcome::Accepted),
            Err(TwilioError::Gone) => Verdict::Done(Outcome::Gone),
            Err(TwilioError::Retry {
                reason,
                retry_after,
            }) => Verdict::Retry(retry_after, reason),
            Err(TwilioError::Permanent(reason)) => Verdict::DeadLetter(reason),
        }
    }

    fn finished(&self, outcome: Outcome, _seconds: f64) {
        let result = match outcome {
            Outcome::Modified => "routed",
            Outcome::Accepted => "already_there",
            Outcome::Skipped => "unrouted",
            Outcome::Gone => "gone",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
            _ => "error",
        };
        self.metrics.routing.with_label_values(&[result]).inc();
    }
}

impl Router {
    /// The worker to add: the customer's own, else the fallback.
    fn worker_for(&self, envelope: &Envelope) -> Option<String> {
        let customer = envelope
            .params
            .get_all("MessagingBinding.Address")
            .filter(|address| !address.is_empty())
            .find_map(|address| self.directory.customer(address));
        self.metrics.lookup(if customer.is_some() {
            Lookup::Hit
        } else {
            Lookup::Miss
        });
        customer
            .and_then(|customer| customer.worker.clone())
            .filter(|worker| !worker.is_empty())
            .or_else(|| self.fallback_worker.clone())
    }
}
