//! `resolver dlq list | retry | purge`: the dead letters of `FRONTLINE_DLQ`. A retry handles the
//! message again with the same job the consumer runs (here, in the command), so a fixed cause
//! (a corrected credential, a participant restored) lands the update; the dead letter is deleted
//! only after that succeeds. Nothing is published to the event stream again, so other services
//! consuming `FRONTLINE_EVENTS` never see a retried event twice.

use async_nats::jetstream::{self, stream};
use frontline_shared::headers;
use frontline_shared::subject::{DLQ_STREAM, RESOLVER_CONSUMER, ROUTER_CONSUMER};

use crate::consumer::{Job, Verdict};
use crate::participants::ParticipantWorker;
use crate::routing::Router;

/// The jobs a dead letter can be retried with, by consumer name.
#[derive(Debug, Clone)]
pub struct Jobs {
    /// The `frontline-resolver` consumer's job.
    pub participants: ParticipantWorker,
    /// The `frontline-router` consumer's job.
    pub router: Router,
}

impl Jobs {
    async fn run(&self, consumer: &str, payload: &[u8], traceparent: &str) -> Option<Verdict> {
        match consumer {
            RESOLVER_CONSUMER => Some(self.participants.run(payload, traceparent).await),
            ROUTER_CONSUMER => Some(self.router.run(payload, traceparent).await),
            _ => None,
        }
    }
}

/// One dead letter, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its sequence in `FRONTLINE_DLQ`.
    pub sequence: u64,
    /// When it was dead-lettered (RFC 3339).
    pub time: String,
    /// The consumer that gave up on it.
    pub consumer: String,
    /// The subject the event was stored under.
    pub original_subject: String,
    /// Why.
    pub reason: String,
}

async fn dlq(js: &jetstream::Context) -> Result<stream::Stream, String> {
    js.get_stream(DLQ_STREAM)
        .await
        .map_err(|err| format!("the dead-letter stream {DLQ_STREAM}: {err}"))
}

fn header(message: &async_nats::jetstream::message::StreamMessage, name: &str) -> String {
    message
        .headers
        .get(name)
        .map_or_else(|| "?".to_owned(), |v| v.as_str().to_owned())
}

/// Every dead letter's summary (the oldest first, at most `limit`).
///
/// # Errors
/// When the stream cannot be read.
pub async fn list(js: &jetstream::Context, limit: usize) -> Result<Vec<DeadLetter>, String> {
    let mut stream = dlq(js).await?;
    let state = stream
        .info()
        .await
        .map_err(|err| err.to_string())?
        .state
        .clone();
    let mut letters = Vec::new();
    if state.messages == 0 {
        return Ok(letters);
    }
    for sequence in state.first_sequence..=state.last_sequence {
        if letters.len() >= limit {
            break;
        }
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue; // deleted
        };
        letters.push(DeadLetter {
            sequence,
            time: message.time.to_string(),
            consumer: message.subject.split('.').nth(2).unwrap_or("?").to_owned(),
            original_subject: header(&message, headers::ORIGINAL_SUBJECT),
            reason: header(&message, headers::DLQ_REASON),
        });
    }
    Ok(letters)
}

/// What a retry did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retried {
    /// Handled, and deleted from the DLQ.
    pub done: Vec<u64>,
    /// Still failing (sequence, reason): left in the DLQ.
    pub failed: Vec<(u64, String)>,
}

/// Retries `sequences` (every dead letter when `None`).
///
/// # Errors
/// When the stream cannot be read.
pub async fn retry(
    js: &jetstream::Context,
    sequences: Option<Vec<u64>>,
    jobs: &Jobs,
) -> Result<Retried, String> {
    let sequences = match sequences {
        Some(sequences) => sequences,
        None => list(js, usize::MAX)
            .await?
            .into_iter()
            .map(|letter| letter.sequence)
            .collect(),
    };
    let stream = dlq(js).await?;
    let mut retried = Retried::default();
    for sequence in sequences {
        let message = match stream.get_raw_message(sequence).await {
            Ok(message) => message,
            Err(err) => {
                retried
                    .failed
                    .push((sequence, format!("not in the DLQ: {err}")));
                continue;
            }
        };
        let consumer = message.subject.split('.').nth(2).unwrap_or("").to_owned();
        let traceparent = message.headers.get(headers::TRACEPARENT).map_or_else(
            || frontline_runtime::telemetry::child_traceparent(None),
            |v| v.as_str().to_owned(),
        );
        match jobs.run(&consumer, &message.payload, &traceparent).await {
            Some(Verdict::Done(_)) => match stream.delete_message(sequence).await {
                Ok(_) => retried.done.push(sequence),
                Err(err) => retried
                    .failed
                    .push((sequence, format!("handled, but not deleted: {err}"))),
            },
            Some(Verdict::Retry(_, reason) | Verdict::DeadLetter(reason)) => {
                retried.failed.push((sequence, reason));
            }
            None => retried
                .failed
                .push((sequence, format!("no job for consumer {consumer:?}"))),
        }
    }
    Ok(retried)
}

/// Deletes every dead letter; returns how many there were.
///
/// # Errors
/// When the stream refuses.
pub async fn purge(js: &jetstream::Context) -> Result<u64, String> {
    let stream = dlq(js).await?;
    stream
        .purge()
        .await
        .map(|purged| purged.purged)
        .map_err(|err| err.to_string())
}
