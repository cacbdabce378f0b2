//! The pre-event loop: requests arrive on `<prefix>.pre.>` in the `frontline-resolvers` queue
//! group (each handled by one replica), are decoded, decided by [`crate::rules::resolve`] and
//! answered. A request whose `Frontline-Deadline` has passed is skipped: the ingress has already
//! answered Twilio with its fallback.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_nats::{Client, Message, Subscriber};
use frontline_shared::{Envelope, EventType, PreReply, headers};
use futures::StreamExt;
use tracing::Instrument;

use std::sync::Arc;

use crate::directory::CustomerDirectory;
use crate::metrics::{Outcome, ResolverMetrics};
use crate::rules::{PARAMS_READ, resolve};

/// Answers requests from `subscriber` until it ends (after the client is drained).
pub async fn serve(
    client: Client,
    mut subscriber: Subscriber,
    directory: Arc<dyn CustomerDirectory>,
    metrics: ResolverMetrics,
) {
    while let Some(message) = subscriber.next().await {
        let span = tracing::info_span!("pre_event", subject = %message.subject, trace_id = tracing::field::Empty);
        // The trace only shows through the span (no next hop carries it): nothing to do when
        // the span is filtered out.
        if !span.is_disabled() {
            let incoming = message
                .headers
                .as_ref()
                .and_then(|h| h.get(headers::TRACEPARENT))
                .map(|v| v.as_str());
            frontline_ingress::telemetry::continue_trace(&span, incoming);
        }
        handle(&client, message, directory.as_ref(), &metrics)
            .instrument(span)
            .await;
    }
    tracing::info!("pre-event subscription ended");
}

async fn handle(
    client: &Client,
    message: Message,
    directory: &dyn CustomerDirectory,
    metrics: &ResolverMetrics,
) {
    let started = Instant::now();
    let Some(reply_to) = message.reply.clone() else {
        tracing::warn!(subject = %message.subject, "pre-event without a reply subject; ignored");
        return;
    };
    if deadline_passed(&message) {
        tracing::warn!(subject = %message.subject, "pre-event past its deadline; skipped");
        let event = event_of(&message);
        metrics.handled(event, Outcome::Expired, started.elapsed().as_secs_f64());
        return;
    }
    let (event, reply) = match Envelope::from_slice_with_params(&message.payload, PARAMS_READ) {
        Ok(envelope) => {
            let resolution = resolve(&envelope, directory);
            if let Some(lookup) = resolution.lookup {
                metrics.lookup(lookup);
            }
            (EventType::parse(&envelope.event_type), resolution.reply)
        }
        Err(err) => {
            tracing::warn!(subject = %message.subject, cause = %err, "undecodable pre-event");
            (
                event_of(&message),
                PreReply::Error {
                    message: "undecodable envelope".into(),
                },
            )
        }
    };
    let outcome = match &reply {
        PreReply::Accept => Outcome::Accepted,
        PreReply::Modify { .. } => Outcome::Modified,
        PreReply::Reject { .. } => Outcome::Rejected,
        PreReply::Error { .. } => Outcome::Error,
    };
    if let Err(err) = client.publish(reply_to, reply.to_vec().into()).await {
        tracing::warn!(cause = %err, "sending the reply failed");
    }
    tracing::debug!(
        event_type = event.map(EventType::as_str),
        outcome = outcome.as_str(),
        "pre-event answered"
    );
    metrics.handled(event, outcome, started.elapsed().as_secs_f64());
}

/// The event type named by the subject (`<prefix>.pre.<EventType>.<sid>`), without decoding.
fn event_of(message: &Message) -> Option<EventType> {
    message.subject.split('.').nth(2).and_then(EventType::parse)
}

fn deadline_passed(message: &Message) -> bool {
    let deadline = message
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::DEADLINE))
        .and_then(|v| v.as_str().parse::<u64>().ok());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    deadline.is_some_and(|deadline| now > deadline)
}
