//! The one seam between the webhook handler and NATS: a small trait, so routing and answers can
//! be tested with a fake, and its NATS implementation (core request/reply for pre-events,
//! JetStream publish with PubAck for post-events).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, stream};
use async_nats::{Client, HeaderMap, RequestErrorKind, Subject};
use bytes::Bytes;
use tokio::sync::{Notify, watch};

use crate::cache::{AnswerCache, CacheSettings};
use crate::metrics::IngressMetrics;

/// Why a pre-event request got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No resolver is subscribed: answered by the server at once.
    #[error("no resolvers")]
    NoResponders,
    /// A resolver is subscribed but did not answer in time.
    #[error("timed out")]
    TimedOut,
    /// Not connected to NATS.
    #[error("not connected to NATS")]
    Disconnected,
    /// Anything else the client reported.
    #[error("request failed")]
    Other,
}

/// Why a post-event was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Not connected to NATS.
    #[error("not connected to NATS")]
    Disconnected,
    /// No PubAck within the publish timeout.
    #[error("no PubAck in time")]
    TimedOut,
    /// JetStream could not take it now (no stream or no leader, a broken connection): a
    /// failure that can pass.
    #[error("JetStream unavailable: {0}")]
    Unavailable(String),
    /// JetStream refused it (a full stream, say), or the client failed for good.
    #[error("publish failed: {0}")]
    Failed(String),
}

impl PublishError {
    /// Whether trying again may succeed (the failure can pass).
    pub fn can_pass(&self) -> bool {
        !matches!(self, PublishError::Failed(_))
    }

    /// The `cause` label of a refusal.
    pub fn cause(&self) -> &'static str {
        match self {
            PublishError::Disconnected => "disconnected",
            PublishError::TimedOut => "timed_out",
            PublishError::Unavailable(_) => "unavailable",
            PublishError::Failed(_) => "refused",
        }
    }
}

/// The first pause between two tries of a publish; it doubles, up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between two tries.
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How JetStream acknowledged a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Newly stored.
    New,
    /// Already stored within the duplicate window.
    Duplicate,
}

/// A message's NATS headers, built afresh for each try of a publish. The client takes them by
/// value; building them again for a retry (rare) costs less than copying them ahead of every
/// first try.
pub type Headers<'a> = &'a (dyn Fn() -> HeaderMap + Sync);

/// What the webhook handler needs from the broker.
pub trait Broker: Send + Sync + 'static {
    /// Asks a resolver, waiting at most `timeout`.
    fn request(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
        timeout: Duration,
    ) -> impl Future<Output = Result<Bytes, RequestError>> + Send;

    /// Stores durably; resolves after the PubAck.
    fn publish(
        &self,
        subject: String,
        headers: Headers<'_>,
        payload: Bytes,
    ) -> impl Future<Output = Result<Stored, PublishError>> + Send;

    /// `Ok` when connected and the stream exists, else a short reason.
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send;

    /// A pre-event answer stored under `key` by any ingress replica, if still there.
    fn cached_answer(&self, key: &str) -> impl Future<Output = Option<Bytes>> + Send;

    /// Stores a pre-event answer under `key` for the cache's TTL (best effort: not acknowledged).
    fn cache_answer(&self, key: String, answer: Bytes) -> impl Future<Output = ()> + Send;
}

/// The post-event stream's settings.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Stream name (`STREAM_NAME`).
    pub name: String,
    /// Its subjects (`<prefix>.post.>`, `<prefix>.routing.>`).
    pub subjects: Vec<String>,
    /// Retention by age (`STREAM_MAX_AGE`).
    pub max_age: Duration,
    /// Retention by size (`STREAM_MAX_BYTES`); a full stream refuses new events.
    pub max_bytes: i64,
    /// How long a `Nats-Msg-Id` is remembered (`STREAM_DUPLICATE_WINDOW`).
    pub duplicate_window: Duration,
    /// Replicas (`STREAM_REPLICAS`).
    pub replicas: usize,
}

/// The largest message the stream stores: four times the largest webhook body, with room for
/// the envelope's escaping.
pub const MAX_MESSAGE_BYTES: i32 = 256 * 1024;

impl StreamSettings {
    /// The JetStream configuration: file storage, bounded by age and size (new events refused
    /// when full, never old ones dropped unseen), largest message 256 KiB.
    pub fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: self.subjects.clone(),
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            duplicate_window: self.duplicate_window,
            max_age: self.max_age,
            max_bytes: self.max_bytes,
            max_message_size: MAX_MESSAGE_BYTES,
            discard: stream::DiscardPolicy::New,
            num_replicas: self.replicas,
            ..stream::Config::default()
        }
    }
}

/// The NATS broker.
#[derive(Debug, Clone)]
pub struct NatsBroker {
    client: Client,
    jetstream: jetstream::Context,
    stream_name: String,
    /// Signalled when a publish finds no stream (deleted, or a server that lost its store).
    stream_missing: Arc<Notify>,
    cache: AnswerCache,
    /// How long one try waits for its PubAck (the JetStream context's own timeout).
    publish_timeout: Duration,
    budget: Duration,
    metrics: IngressMetrics,
}

impl NatsBroker {
    /// A broker over `client`: each try's PubAck is awaited at most `publish_timeout`, and a
    /// publish keeps trying while its failure can pass, until `budget` is spent.
    pub fn new(
        client: Client,
        stream_name: String,
        publish_timeout: Duration,
        budget: Duration,
        metrics: IngressMetrics,
    ) -> NatsBroker {
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(publish_timeout)
            .build(client.clone());
        NatsBroker {
            cache: AnswerCache::new(client.clone()),
            client,
            jetstream,
            stream_name,
            stream_missing: Arc::default(),
            publish_timeout,
            budget,
            metrics,
        }
    }

    /// One try of a publish, given up at `deadline`.
    async fn try_publish(
        &self,
        subject: &Subject,
        headers: HeaderMap,
        payload: &Bytes,
        deadline: Instant,
    ) -> Result<Stored, PublishError> {
        if !self.connected() {
            return Err(PublishError::Disconnected);
        }
        // Sending is bounded by the deadline (it only waits when the client's queue is full).
        let sent = self
            .jetstream
            .publish_with_headers(subject.clone(), headers, payload.clone());
        let ack = tokio::time::timeout_at(deadline.into(), sent)
            .await
            .map_err(|_| PublishError::TimedOut)?
            .map_err(|err| PublishError::Unavailable(err.to_string()))?;
        let acknowledged = async {
            match ack.await {
                Ok(ack) if ack.duplicate => Ok(Stored::Duplicate),
                Ok(_) => Ok(Stored::New),
                Err(err) => Err(match err.kind() {
                    PublishErrorKind::TimedOut => PublishError::TimedOut,
                    PublishErrorKind::StreamNotFound => {
                        self.stream_missing.notify_one();
                        PublishError::Unavailable(err.to_string())
                    }
                    PublishErrorKind::BrokenPipe => PublishError::Unavailable(err.to_string()),
                    _ => PublishError::Failed(err.to_string()),
                }),
            }
        };
        // The PubAck wait has the context's own timeout (`publish_timeout`); a second timer is
        // set only when the budget ends sooner.
        if deadline.saturating_duration_since(Instant::now()) >= self.publish_timeout {
            acknowledged.await
        } else {
            tokio::time::timeout_at(deadline.into(), acknowledged)
                .await
                .unwrap_or(Err(PublishError::TimedOut))
        }
    }

    /// Keeps the stream created and up to date: at start, after every reconnection, and when a
    /// publish finds it missing (a server that lost its store, a stream deleted by hand would
    /// otherwise refuse every publish). Runs until `connected` closes.
    pub async fn maintain_stream(
        &self,
        settings: StreamSettings,
        mut connected: watch::Receiver<bool>,
    ) {
        loop {
            if *connected.borrow_and_update() {
                match self
                    .jetstream
                    .create_or_update_stream(settings.config())
                    .await
                {
                    Ok(info) => {
                        tracing::info!(stream = %info.config.name, replicas = info.config.num_replicas, "stream ready");
                    }
                    Err(err) => {
                        tracing::error!(stream = %settings.name, cause = %err, "creating the stream failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            tokio::select! {
                changed = connected.changed() => if changed.is_err() {
                    return;
                },
                () = self.stream_missing.notified() => {
                    tracing::warn!(stream = %settings.name, "the stream is missing; creating it again");
                }
            }
        }
    }

    /// Reads the stream's size every `every` into `bytes` until `connected` closes, for the
    /// alert before it is full.
    pub async fn report_stream_usage(&self, bytes: prometheus::IntGauge, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            if !self.connected() {
                continue;
            }
            match self.jetstream.get_stream(&self.stream_name).await {
                Ok(stream) => {
                    bytes.set(i64::try_from(stream.cached_info().state.bytes).unwrap_or(i64::MAX))
                }
                Err(err) => tracing::debug!(cause = %err, "reading the stream's size failed"),
            }
        }
    }

    /// Opens the answer cache's bucket (retrying until NATS allows it).
    pub async fn open_cache(&self, settings: CacheSettings) {
        self.cache.open(&self.jetstream, settings).await;
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }
}

impl Broker for NatsBroker {
    async fn request(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RequestError> {
        if !self.connected() {
            return Err(RequestError::Disconnected);
        }
        let request = async_nats::Request::new()
            .headers(headers)
            .payload(payload)
            .timeout(Some(timeout));
        match self.client.send_request(subject, request).await {
            Ok(message) => Ok(message.payload),
            Err(err) => Err(match err.kind() {
                RequestErrorKind::NoResponders => RequestError::NoResponders,
                RequestErrorKind::TimedOut => RequestError::TimedOut,
                _ => RequestError::Other,
            }),
        }
    }

    async fn publish(
        &self,
        subject: String,
        headers: Headers<'_>,
        payload: Bytes,
    ) -> Result<Stored, PublishError> {
        let started = Instant::now();
        let deadline = started + self.budget;
        // Shared, not copied, by each try.
        let subject = Subject::from(subject);
        let mut pause = FIRST_RETRY_PAUSE;
        let mut tries = 0_u32;
        let outcome = loop {
            tries += 1;
            let outcome = self
                .try_publish(&subject, headers(), &payload, deadline)
                .await;
            match outcome {
                // The same Nats-Msg-Id on every try: a try that did land is not stored twice.
                Err(err) if err.can_pass() && Instant::now() < deadline => {
                    tracing::debug!(cause = %err, tries, "publish failed; trying again");
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(pause.min(left)).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                outcome => break outcome,
            }
        };
        self.metrics.publish_tried(
            tries,
            started.elapsed().as_secs_f64(),
            outcome.as_ref().err(),
        );
        outcome
    }

    async fn cached_answer(&self, key: &str) -> Option<Bytes> {
        self.cache.get(key).await
    }

    async fn cache_answer(&self, key: String, answer: Bytes) {
        self.cache.put(key, answer).await;
    }

    async fn ready(&self) -> Result<(), String> {
        if !self.connected() {
            return Err("NATS not connected".into());
        }
        match tokio::time::timeout(
            Duration::from_secs(2),
            self.jetstream.get_stream(&self.stream_name),
        )
        .await
        {
            // A clustered stream takes writes only once it has a leader.
            Ok(Ok(stream)) => match &stream.cached_info().cluster {
                Some(cluster) if cluster.leader.is_none() => {
                    Err(format!("stream {} has no leader yet", self.stream_name))
                }
                _ => Ok(()),
            },
            Ok(Err(err)) => Err(format!("stream {}: {err}", self.stream_name)),
            Err(_) => Err("JetStream did not answer".into()),
        }
    }
}
