//! A durable JetStream consumer shared by every resolver replica (each message goes to one
//! replica, explicit ack), running a [`Job`] on each message: the participant updates and the
//! routing of conversations both stand on it. It creates the consumer and the dead-letter stream,
//! makes them again after a reconnection or a pull error (a server that lost its store has
//! neither), and applies each message's [`Verdict`]:
//! - done: acknowledged;
//! - retry (429, 5xx, network errors): redelivered after a growing delay (a nak with delay:
//!   about a second first, at most a minute, or Twilio's `Retry-After`), until `MAX_DELIVER`
//!   attempts;
//! - give up (a permanent 4xx, `MAX_DELIVER` attempts): published to the dead-letter stream with
//!   the reason, and only then acknowledged; a dead letter that cannot be stored is redelivered
//!   instead, so nothing is dropped silently.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, Message, stream};
use frontline_runtime::telemetry;
use frontline_shared::headers;
use frontline_shared::subject::{DLQ_STREAM, Subjects};
use futures::StreamExt;
use tokio::sync::watch;
use tracing::Instrument;

use crate::metrics::{Outcome, ResolverMetrics};

/// The longest delay before a redelivery.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What a job decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Done: acknowledge, counted with this outcome.
    Done(Outcome),
    /// Try again: after Twilio's `Retry-After` when given, else after the backoff.
    Retry(Option<Duration>, String),
    /// Give up: dead letter with the reason, then acknowledge.
    DeadLetter(String),
}

/// The work done on each message of one durable consumer.
pub trait Job: Clone + Send + Sync + 'static {
    /// Decides about one message's payload (a delivery, or a dead letter retried by hand);
    /// `traceparent` continues the message's trace for the calls it makes.
    fn run(&self, payload: &[u8], traceparent: &str) -> impl Future<Output = Verdict> + Send;

    /// Counts one finished delivery.
    fn finished(&self, outcome: Outcome, seconds: f64);
}

/// Settings of one durable consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// The durable consumer's name (`frontline-resolver`, `frontline-router`).
    pub name: &'static str,
    /// The subjects it takes from the stream.
    pub filter_subject: String,
    /// The post-event stream.
    pub stream: String,
    /// How long a delivery may stay unacknowledged before it is redelivered.
    pub ack_wait: Duration,
    /// Messages handled at once by this replica.
    pub concurrency: usize,
    /// Replicas of the dead-letter stream.
    pub replicas: usize,
    /// `MAX_DELIVER`: attempts before a dead letter.
    pub max_deliver: i64,
}

/// A consumer and what it needs besides its job.
#[derive(Debug, Clone)]
pub struct Consumer<J> {
    /// The work on each message.
    pub job: J,
    /// JetStream, for the consumer and dead letters.
    pub jetstream: jetstream::Context,
    /// Subjects of this deployment.
    pub subjects: Subjects,
    /// Its settings.
    pub settings: ConsumerSettings,
    /// Metrics (the lag gauges are the participant consumer's).
    pub metrics: Option<ResolverMetrics>,
}

impl<J: Job> Consumer<J> {
    /// Runs until `stop` turns `true`: creates the consumer (and the dead-letter stream), calls
    /// `on_ready` once it exists, makes it again after every reconnection, keeps the lag metrics
    /// up to date, and consumes; the messages in hand finish first.
    pub async fn run(
        self,
        on_ready: impl FnOnce(),
        connected: watch::Receiver<bool>,
        stop: watch::Receiver<bool>,
    ) {
        let mut stopping = stop.clone();
        let consumer = tokio::select! {
            consumer = self.ensure() => consumer,
            _ = stopping.wait_for(|stopped| *stopped) => return,
        };
        on_ready();
        let lag = self
            .metrics
            .clone()
            .map(|metrics| tokio::spawn(report_lag(consumer.clone(), metrics, stop.clone())));
        let keeper = tokio::spawn(self.clone().keep(connected, stop.clone()));
        let name = self.settings.name;
        tracing::info!(stream = %self.settings.stream, consumer = name, "consumer started");
        self.consume(consumer, stop).await;
        if let Some(lag) = lag {
            let _ = lag.await;
        }
        let _ = keeper.await;
        tracing::info!(consumer = name, "consumer stopped");
    }

    /// Makes the consumer (and the dead-letter stream) again after every reconnection, until
    /// `stop`: creating what exists already changes nothing.
    async fn keep(self, mut connected: watch::Receiver<bool>, mut stop: watch::Receiver<bool>) {
        connected.mark_unchanged();
        loop {
            tokio::select! {
                changed = connected.changed() => if changed.is_err() {
                    return;
                },
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            if !*connected.borrow_and_update() {
                continue;
            }
            tokio::select! {
                _ = self.ensure() => {},
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }

    /// Creates the dead-letter stream and the durable consumer (waiting for the post-event stream,
    /// which the ingress creates), retrying until NATS allows it.
    async fn ensure(&self) -> PullConsumer {
        let settings = &self.settings;
        loop {
            match self.try_ensure().await {
                Ok(consumer) => return consumer,
                Err(err) => {
                    tracing::warn!(stream = %settings.stream, cause = %err, "consumer not ready yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn try_ensure(&self) -> Result<PullConsumer, async_nats::Error> {
        let (jetstream, subjects, settings) = (&self.jetstream, &self.subjects, &self.settings);
        jetstream
            .get_or_create_stream(stream::Config {
                name: DLQ_STREAM.to_owned(),
                subjects: vec![subjects.dlq_wildcard()],
                storage: stream::StorageType::File,
                num_replicas: settings.replicas,
                max_age: Duration::from_secs(30 * 24 * 3600),
                ..stream::Config::default()
            })
            .await?;
        let stream = jetstream.get_stream(&settings.stream).await?;
        let config = pull::Config {
            durable_name: Some(settings.name.to_owned()),
            filter_subject: settings.filter_subject.clone(),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: settings.ack_wait,
            // Unlimited on the server: the worker dead-letters at MAX_DELIVER itself, so a replica
            // that dies during the last attempt cannot make a message vanish.
            max_deliver: -1,
            max_ack_pending: 1_000,
            ..pull::Config::default()
        };
        Ok(stream.get_or_create_consumer(settings.name, config).await?)
    }

    /// Consumes until `stop` turns `true`, then lets the messages in hand finish.
    async fn consume(&self, mut consumer: PullConsumer, stop: watch::Receiver<bool>) {
        let settings = &self.settings;
        let stopped = || {
            let mut stop = stop.clone();
            async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            }
        };
        while !*stop.borrow() {
            let messages = match consumer.messages().await {
                Ok(messages) => messages,
                Err(err) => {
                    tracing::warn!(cause = %err, "pulling from the consumer failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {},
                        () = stopped() => return,
                    }
                    consumer = self.recover(consumer, &stop).await;
                    continue;
                }
            };
            // Ends on `stop`, or at the first error of the pull subscription (a lost connection, a
            // consumer deleted, a server that lost its store): then the consumer is checked and
            // pulled again. The messages in hand finish first either way.
            let handled = messages
                .take_until(stopped())
                .take_while(|message| {
                    let ok = message.is_ok();
                    if let Err(err) = message {
                        tracing::warn!(cause = %err, "consumer stream error; pulling again");
                    }
                    futures::future::ready(ok)
                })
                .for_each_concurrent(settings.concurrency, |message| async move {
                    if let Ok(message) = message {
                        self.handle(message).await;
                    }
                });
            handled.await;
            if !*stop.borrow() {
                consumer = self.recover(consumer, &stop).await;
            }
        }
    }

    /// The consumer to pull from next: `consumer` while the server still has it, else made again
    /// (with the dead-letter stream) once its stream exists again.
    async fn recover(
        &self,
        mut consumer: PullConsumer,
        stop: &watch::Receiver<bool>,
    ) -> PullConsumer {
        if consumer.info().await.is_ok() {
            return consumer;
        }
        tracing::warn!(
            consumer = self.settings.name,
            "the consumer is gone; creating it again"
        );
        let mut stopping = stop.clone();
        tokio::select! {
            made = self.ensure() => made,
            _ = stopping.wait_for(|stopped| *stopped) => consumer,
        }
    }

    /// Handles one delivery and acknowledges it (or not) as its verdict says.
    async fn handle(&self, message: Message) {
        let span = tracing::info_span!(
            target: telemetry::REQUEST_SPANS,
            "consumed",
            consumer = self.settings.name,
            trace_id = tracing::field::Empty
        );
        let incoming = message
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::TRACEPARENT))
            .map(|v| v.to_string());
        // The REST calls continue the trace as children of this span.
        let traceparent = telemetry::continue_trace(&span, incoming.as_deref());
        self.handle_in_span(message, traceparent)
            .instrument(span)
            .await;
    }

    async fn handle_in_span(&self, message: Message, traceparent: String) {
        let started = Instant::now();
        let delivered = message.info().map_or(1, |info| info.delivered);
        let verdict = self.job.run(&message.payload, &traceparent).await;
        let verdict = match verdict {
            Verdict::Retry(_, reason) if delivered >= self.settings.max_deliver => {
                Verdict::DeadLetter(format!("gave up after {delivered} attempts: {reason}"))
            }
            other => other,
        };
        let outcome = match verdict {
            Verdict::Done(outcome) => ack(&message, AckKind::Ack)
                .await
                .map_or(Outcome::Error, |()| outcome),
            Verdict::Retry(retry_after, reason) => {
                let delay = retry_after.unwrap_or_else(|| backoff(delivered));
                tracing::warn!(consumer = self.settings.name, delivered, delay_ms = delay.as_millis() as u64, reason = %telemetry::cut(&reason), trace = %traceparent, "will be retried");
                let _ = ack(&message, AckKind::Nak(Some(delay))).await;
                Outcome::Retried
            }
            Verdict::DeadLetter(reason) => self.dead_letter(&message, &reason).await,
        };
        self.job.finished(outcome, started.elapsed().as_secs_f64());
    }

    /// Publishes the message to the dead-letter stream with the reason, then acknowledges it.
    /// If the dead letter cannot be stored the message is redelivered instead: never dropped.
    async fn dead_letter(&self, message: &Message, reason: &str) -> Outcome {
        let event_type = message
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::EVENT_TYPE))
            .map_or("unknown", |v| v.as_str());
        let subject = self.subjects.dlq(self.settings.name, event_type);
        let reason_line: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        let dead_headers =
            dead_letter_headers(message.headers.as_ref(), &message.subject, &reason_line);
        let stored = match self
            .jetstream
            .publish_with_headers(subject, dead_headers, message.payload.clone())
            .await
        {
            Ok(ack) => ack.await.map(drop).map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        };
        match stored {
            Ok(()) => {
                tracing::error!(consumer = self.settings.name, reason = %telemetry::cut(&reason_line), "dead-lettered");
                let _ = ack(message, AckKind::Ack).await;
                Outcome::DeadLettered
            }
            Err(err) => {
                tracing::error!(cause = %err, "storing a dead letter failed; redelivering");
                let _ = ack(message, AckKind::Nak(Some(Duration::from_secs(5)))).await;
                Outcome::Error
            }
        }
    }
}

/// How often the consumer's lag is read for the metrics.
const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Keeps `frontline_resolver_consumer_pending` and `..._ack_pending` up to date.
async fn report_lag(
    mut consumer: async_nats::jetstream::consumer::PullConsumer,
    metrics: ResolverMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(LAG_INTERVAL);
    loop {
        tokio::select! {
            _ = ticks.tick() => {},
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        match consumer.info().await {
            Ok(info) => {
                metrics
                    .consumer_pending
                    .set(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
                metrics
                    .consumer_ack_pending
                    .set(i64::try_from(info.num_ack_pending).unwrap_or(i64::MAX));
            }
            Err(err) => tracing::debug!(cause = %err, "reading the consumer's lag failed"),
        }
    }
}

/// The delay before redelivery number `delivered + 1`: one second, doubling, at most a minute.
pub fn backoff(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.max(1) - 1)
        .unwrap_or(u32::MAX)
        .min(6);
    (Duration::from_secs(1) * 2u32.pow(exponent)).min(MAX_BACKOFF)
}

/// A dead letter's headers: of the original's only the Twilio ones and `traceparent` (never a
/// `Nats-*` one: an `Nats-Expected-*` header copied over would make the dead-letter stream
/// refuse it forever, and `Nats-Msg-Id` would make it a duplicate), the reason and the original
/// subject.
fn dead_letter_headers(original: Option<&HeaderMap>, subject: &str, reason: &str) -> HeaderMap {
    let mut dead = HeaderMap::new();
    let kept = |name: &str| {
        name.get(..headers::TWILIO_PREFIX.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(headers::TWILIO_PREFIX))
            || name.eq_ignore_ascii_case(headers::TRACEPARENT)
    };
    for (name, values) in original.into_iter().flat_map(HeaderMap::iter) {
        let name = name.to_string();
        if !kept(&name) {
            continue;
        }
        for value in values {
            dead.append(name.as_str(), value.as_str());
        }
    }
    dead.insert(headers::DLQ_REASON, reason);
    dead.insert(headers::ORIGINAL_SUBJECT, subject);
    dead
}

async fn ack(message: &Message, kind: AckKind) -> Result<(), ()> {
    message.ack_with(kind).await.map_err(
        |err| tracing::warn!(cause = %err, "acknowledging failed; the message will be redelivered"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_keeps_only_twilio_headers_and_the_trace() {
        let mut original = HeaderMap::new();
        original.insert(headers::EVENT_TYPE, "onParticipantAdded");
        original.insert("twilio-account-sid", "AC1");
        original.insert(
            headers::TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        original.insert(headers::MSG_ID, "abc");
        original.insert("Nats-Expected-Stream", "FRONTLINE_EVENTS");
        original.insert("Nats-Expected-Last-Sequence", "0");
        original.insert("X-Other", "x");
        let dead = dead_letter_headers(
            Some(&original),
            "frontline.post.onParticipantAdded.CH1",
            "why",
        );
        let mut names: Vec<String> = dead.iter().map(|(name, _)| name.to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "Frontline-Dlq-Reason",
                "Frontline-Original-Subject",
                "Twilio-Event-Type",
                "traceparent",
                "twilio-account-sid"
            ]
        );
        assert_eq!(
            dead.get(headers::ORIGINAL_SUBJECT).map(|v| v.as_str()),
            Some("frontline.post.onParticipantAdded.CH1")
        );
    }

    #[test]
    fn backoff_starts_at_a_second_and_stops_at_a_minute() {
        let delays: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(0), Duration::from_secs(1));
    }
}
