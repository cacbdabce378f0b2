//! Frontline's `onParticipantAdded` rule, a [`Job`] of the durable consumer `frontline-resolver`
//! that every replica shares (see [`crate::consumer`] for delivery, retries and dead letters).
//! For a customer participant the attributes are read from the Twilio REST API, merged, and
//! written back only when something changed, so a redelivery makes no second update. 429, 5xx
//! and network errors are retried; 404 (the participant is gone) is done and counted; another
//! 4xx is a dead letter.

use std::sync::Arc;

use frontline_shared::conversation_event::Participant;
use frontline_shared::{ConversationEvent, Envelope, EventType};

use crate::consumer::{Job, Verdict};
use crate::directory::{CustomerDirectory, Lookup};
use crate::metrics::{Outcome, ResolverMetrics};
use crate::twilio::{TwilioClient, TwilioError};
use enrich::{customer_address, merge_participant_attributes};
use frontline_runtime::telemetry;

mod enrich;

/// The participant job: everything one message needs.
#[derive(Debug, Clone)]
pub struct ParticipantWorker {
    /// The REST client.
    pub twilio: TwilioClient,
    /// The customer directory.
    pub directory: Arc<dyn CustomerDirectory>,
    /// Metrics.
    pub metrics: ResolverMetrics,
}

impl Job for ParticipantWorker {
    async fn run(&self, payload: &[u8], traceparent: &str) -> Verdict {
        match Envelope::from_slice(payload)
            .as_ref()
            .map(ConversationEvent::from_envelope)
        {
            Ok(ConversationEvent::ParticipantAdded(participant)) => {
                self.enrich(&participant, Some(traceparent)).await
            }
            Ok(other) => Verdict::DeadLetter(format!(
                "not an onParticipantAdded event: {}",
                other.event_type().map_or("unknown", EventType::as_str)
            )),
            Err(err) => Verdict::DeadLetter(format!("undecodable envelope: {err}")),
        }
    }

    fn finished(&self, outcome: Outcome, seconds: f64) {
        self.metrics
            .handled(Some(EventType::ParticipantAdded), outcome, seconds);
    }
}

impl ParticipantWorker {
    async fn enrich(&self, added: &Participant, traceparent: Option<&str>) -> Verdict {
        let Some(address) = customer_address(added) else {
            return Verdict::Done(Outcome::Skipped);
        };
        let (Some(conversation), Some(participant)) = (
            non_empty(&added.conversation_sid),
            non_empty(&added.participant_sid),
        ) else {
            return Verdict::DeadLetter("no ConversationSid or ParticipantSid".into());
        };
        let Some(customer) = self.directory.customer(address) else {
            self.metrics.lookup(Lookup::Miss);
            return Verdict::Done(Outcome::Skipped);
        };
        self.metrics.lookup(Lookup::Hit);
        let existing = match self
            .twilio
            .participant_attributes(conversation, participant, traceparent)
            .await
        {
            Ok(existing) => existing,
            Err(err) => return failed(err, conversation),
        };
        let merged = match merge_participant_attributes(&existing, &customer) {
            Ok(Some(merged)) => merged,
            Ok(None) => return Verdict::Done(Outcome::Accepted),
            Err(err) => return Verdict::DeadLetter(err.to_string()),
        };
        match self
            .twilio
            .set_participant_attributes(conversation, participant, &merged, traceparent)
            .await
        {
            Ok(()) => {
                tracing::info!(conversation_sid = conversation, participant_sid = participant, customer_id = %telemetry::cut(&customer.customer_id), "participant enriched");
                Verdict::Done(Outcome::Modified)
            }
            Err(err) => failed(err, conversation),
        }
    }
}

/// A parameter's value, unless absent or empty.
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// The verdict on a failed REST call.
fn failed(err: TwilioError, conversation_sid: &str) -> Verdict {
    match err {
        TwilioError::Gone => {
            tracing::info!(conversation_sid, "participant gone; nothing to update");
            Verdict::Done(Outcome::Gone)
        }
        TwilioError::Retry {
            reason,
            retry_after,
        } => Verdict::Retry(retry_after, reason),
        TwilioError::Permanent(reason) => Verdict::DeadLetter(reason),
        TwilioError::Conflict => Verdict::DeadLetter("409 Conflict".into()),
    }
}
