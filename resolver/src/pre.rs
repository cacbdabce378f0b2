//! The pre-event loop: requests arrive on `<prefix>.pre.>` in the `frontline-resolvers` queue
//! group (each handled by one replica), are decoded, decided by [`crate::rules::resolve`] and
//! answered. A request whose `Frontline-Deadline` has passed is skipped: the ingress has already
//! answered Twilio with its fallback. The decisions themselves are [`rules`]'s, pure.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::connection::State;
use async_nats::{Client, Message, Subscriber};
use frontline_runtime::telemetry;
use frontline_shared::subject::{QUEUE_GROUP, Subjects};
use frontline_shared::{Envelope, EventType, PreReply, headers};
use futures::StreamExt;
use tracing::Instrument;

use crate::directory::CustomerDirectory;
use crate::metrics::{Outcome, ResolverMetrics};
use rules::{PARAMS_READ, resolve};

pub mod rules;

/// Joins the resolvers' queue group on `subject` (the pre-event or the callback wildcard), so
/// each request goes to one replica.
///
/// # Errors
/// When the client refuses the subscription.
pub async fn join_queue_group(
    client: &Client,
    subject: String,
) -> Result<Subscriber, async_nats::SubscribeError> {
    client
        .queue_subscribe(subject, QUEUE_GROUP.to_owned())
        .await
}

/// What answering a pre-event needs.
#[derive(Debug)]
pub struct Context {
    /// Subjects of this deployment.
    pub subjects: Subjects,
    /// The only reply subjects answered: the clients' inbox prefix and a dot (`_INBOX.`). A
    /// request naming another reply subject (a JetStream API subject, say) is dropped: the
    /// resolver's reply would be a publish there with the resolver's permissions.
    pub reply_prefix: String,
    /// The customer directory.
    pub directory: Arc<dyn CustomerDirectory>,
    /// Metrics.
    pub metrics: ResolverMetrics,
}

/// Answers requests from `subscriber` until it ends (after the client is drained).
pub async fn serve(client: Client, mut subscriber: Subscriber, context: Context) {
    while let Some(message) = subscriber.next().await {
        let span = tracing::info_span!(target: telemetry::REQUEST_SPANS, "pre_event", subject = %telemetry::cut(&message.subject), trace_id = tracing::field::Empty);
        continue_trace(&span, &message);
        handle(&client, message, &context).instrument(span).await;
    }
    tracing::info!("pre-event subscription ended");
}

async fn handle(client: &Client, message: Message, context: &Context) {
    let Context {
        subjects,
        reply_prefix,
        directory,
        metrics,
    } = context;
    let started = Instant::now();
    let Some(reply_to) = reply_subject(&message, reply_prefix, metrics) else {
        return;
    };
    if deadline_passed(&message) {
        tracing::warn!(subject = %telemetry::cut(&message.subject), "pre-event past its deadline; skipped");
        let event = event_of(subjects, &message);
        metrics.handled(event, Outcome::Expired, started.elapsed().as_secs_f64());
        return;
    }
    let (event, reply) = match Envelope::from_slice_with_params(&message.payload, PARAMS_READ) {
        Ok(envelope) => {
            let resolution = resolve(&envelope, directory.as_ref());
            if let Some(lookup) = resolution.lookup {
                metrics.lookup(lookup);
            }
            (EventType::parse(&envelope.event_type), resolution.reply)
        }
        Err(err) => {
            tracing::warn!(subject = %telemetry::cut(&message.subject), cause = %err, "undecodable pre-event");
            (
                event_of(subjects, &message),
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

/// The event type named by the subject, without decoding the payload.
fn event_of(subjects: &Subjects, message: &Message) -> Option<EventType> {
    subjects
        .parse(&message.subject)
        .and_then(|parsed| parsed.event_type)
}

/// Makes `span` continue the request's trace. The trace only shows through the span (no next
/// hop carries it): nothing to do when the span is filtered out.
pub(crate) fn continue_trace(span: &tracing::Span, message: &Message) {
    if !span.is_disabled() {
        let incoming = message
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::TRACEPARENT))
            .map(|v| v.as_str());
        telemetry::continue_trace(span, incoming);
    }
}

/// The subject to answer `message` on: its reply subject, when it has one under the inbox
/// prefix. A request naming another is dropped and counted: answering it would publish there
/// with the resolver's permissions.
pub(crate) fn reply_subject(
    message: &Message,
    reply_prefix: &str,
    metrics: &ResolverMetrics,
) -> Option<async_nats::Subject> {
    let Some(reply_to) = message.reply.clone() else {
        tracing::warn!(subject = %telemetry::cut(&message.subject), "request without a reply subject; ignored");
        return None;
    };
    if !reply_to.starts_with(reply_prefix) {
        tracing::warn!(
            subject = %telemetry::cut(&message.subject),
            reply = %telemetry::cut(&reply_to),
            "request naming a reply subject outside the inbox prefix; dropped"
        );
        metrics.foreign_reply.inc();
        return None;
    }
    Some(reply_to)
}

/// Whether the request's `Frontline-Deadline` has passed (the ingress stopped waiting).
pub(crate) fn deadline_passed(message: &Message) -> bool {
    let deadline = message
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::DEADLINE))
        .and_then(|v| headers::parse_deadline(v.as_str()));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    deadline.is_some_and(|deadline| now > deadline)
}

/// Returns once the server has the pre-event subscription: after a round trip through it, made
/// after subscribing. A user allowed to publish only replies (NATS `allow_responses`) cannot make
/// one; after three failed tries while connected, a flush has to do.
pub async fn confirm_subscribed(client: &async_nats::Client) {
    let mut failures = 0;
    loop {
        match frontline_runtime::nats::round_trip(client).await {
            Ok(()) => return,
            Err(err) if client.connection_state() == State::Connected => {
                failures += 1;
                if failures >= 3 {
                    tracing::warn!(cause = %err, "no round trip through NATS (publish permissions?); counting the subscription after a flush");
                    let _ = client.flush().await;
                    return;
                }
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
