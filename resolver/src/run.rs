//! Wiring: connect, load the directory, join the queue group, start the participant consumer,
//! serve the admin routes, and on shutdown stop pulling, finish the work in hand and drain,
//! within the grace period.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream;
use frontline_ingress::admin::{ReadinessCheck, serve_admin};
use frontline_shared::subject::{QUEUE_GROUP, Subjects};
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, DirectorySource};
use crate::directory::{CustomerDirectory, Directory, DirectoryError, DirectoryHandle};
use crate::kv::{self, KvError};
use crate::metrics::ResolverMetrics;
use crate::participants::{ConsumerSettings, ParticipantWorker, consume, ensure_consumer};
use crate::twilio::TwilioClient;

/// Why the resolver could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is unusable (exit code 64).
    #[error("configuration: {0}")]
    Config(String),
    /// The customer directory could not be loaded.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The KV directory failed.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// The NATS settings are unusable.
    #[error("NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    /// Subscribing failed.
    #[error("subscribing: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// What `/readyz` reports.
#[derive(Debug, Default)]
struct Readiness {
    directory: AtomicBool,
    subscribed: AtomicBool,
    consumer: AtomicBool,
    consumer_required: bool,
}

impl Readiness {
    fn check(&self, state: State) -> Result<(), String> {
        let flag = |f: &AtomicBool| f.load(Ordering::Acquire);
        if state != State::Connected {
            Err("NATS not connected".into())
        } else if !flag(&self.directory) {
            Err("customer directory not loaded".into())
        } else if !flag(&self.subscribed) {
            Err("not yet subscribed to pre-events".into())
        } else if self.consumer_required && !flag(&self.consumer) {
            Err("participant consumer not ready".into())
        } else {
            Ok(())
        }
    }
}

/// Runs one resolver replica until `shutdown` resolves.
///
/// # Errors
/// A [`RunError`] when the configuration, the directory or the NATS settings are unusable.
pub async fn run(
    admin_listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let subjects = config.subjects().map_err(RunError::Config)?;
    if config.max_deliver < 1 || config.consumer_concurrency == 0 {
        return Err(RunError::Config(
            "MAX_DELIVER and CONSUMER_CONCURRENCY must be at least 1".into(),
        ));
    }
    let metrics = ResolverMetrics::new()?;
    let credentials = config.twilio_credentials();
    if credentials.is_none() {
        tracing::warn!(
            "no Twilio credentials (TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN, or TWILIO_API_KEY + TWILIO_API_SECRET): onParticipantAdded updates are off"
        );
    }
    let (client, _connected) = config.nats.connect("frontline-resolver").await?;
    let jetstream = jetstream::new(client.clone());
    let (stop_tx, stop) = watch::channel(false);
    let stopped = || {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    };

    let readiness = Arc::new(Readiness {
        consumer_required: credentials.is_some(),
        ..Readiness::default()
    });
    let (ready_client, ready_state) = (client.clone(), readiness.clone());
    let ready: ReadinessCheck = Arc::new(move || {
        let verdict = ready_state.check(ready_client.connection_state());
        async move { verdict }.boxed()
    });
    let admin = tokio::spawn(serve_admin(
        admin_listener,
        metrics.registry().clone(),
        ready,
        stopped(),
    ));
    let shutdown = async move {
        shutdown.await;
        stop_tx.send_replace(true);
    };
    tokio::pin!(shutdown);

    let directory = tokio::select! {
        loaded = load_directory(&config, &jetstream) => loaded?,
        () = &mut shutdown => return finish(admin).await,
    };
    readiness.directory.store(true, Ordering::Release);

    let subscriber = client
        .queue_subscribe(subjects.pre_wildcard(), QUEUE_GROUP.to_owned())
        .await?;
    let pre = tokio::spawn(crate::pre::serve(
        client.clone(),
        subscriber,
        directory.clone(),
        metrics.clone(),
    ));
    let (subscribed_client, subscribed) = (client.clone(), readiness.clone());
    tokio::spawn(async move {
        confirm_subscribed(&subscribed_client).await;
        subscribed.subscribed.store(true, Ordering::Release);
    });
    tracing::info!(subject = %subjects.pre_wildcard(), queue_group = QUEUE_GROUP, "resolver started");

    let consumer = credentials.map(|credentials| {
        let twilio = TwilioClient::new(
            &config.twilio_api_base,
            &credentials,
            Duration::from_millis(config.twilio_timeout_ms),
            metrics.twilio_api_requests.clone(),
        );
        let worker = ParticipantWorker {
            twilio,
            directory,
            metrics: metrics.clone(),
            jetstream: jetstream.clone(),
            subjects: subjects.clone(),
            max_deliver: config.max_deliver,
        };
        let settings = ConsumerSettings {
            stream: config.stream_name.clone(),
            ack_wait: config.ack_wait(),
            concurrency: config.consumer_concurrency,
            replicas: config.stream_replicas,
        };
        tokio::spawn(participant_consumer(
            worker,
            jetstream.clone(),
            subjects.clone(),
            settings,
            readiness.clone(),
            stop.clone(),
        ))
    });

    (&mut shutdown).await;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let finished = async {
        if let Some(consumer) = consumer {
            let _ = consumer.await;
        }
        if client.connection_state() == State::Connected {
            tracing::info!("draining: answering the requests already received");
            if let Err(err) = client.drain().await {
                tracing::warn!(cause = %err, "draining NATS failed");
            }
            let _ = pre.await;
        } else {
            // Nothing can be answered without a connection, so there is nothing to drain.
            tracing::warn!("NATS not connected at shutdown; stopping without a drain");
        }
    };
    if tokio::time::timeout(grace, finished).await.is_err() {
        tracing::warn!("grace period over before the work in hand finished");
    }
    finish(admin).await
}

async fn finish(admin: tokio::task::JoinHandle<()>) -> Result<(), RunError> {
    let _ = admin.await;
    tracing::info!("resolver stopped");
    Ok(())
}

/// Returns once the server has the pre-event subscription: after a round trip through it, made
/// after subscribing. A user allowed to publish only replies (NATS `allow_responses`) cannot make
/// one; after three failed tries while connected, a flush has to do.
async fn confirm_subscribed(client: &async_nats::Client) {
    let mut failures = 0;
    loop {
        match frontline_ingress::nats::round_trip(client).await {
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

/// The directory from a file, or from a KV bucket (retried until NATS allows it, then watched).
async fn load_directory(
    config: &Config,
    jetstream: &jetstream::Context,
) -> Result<Arc<dyn CustomerDirectory>, RunError> {
    match &config.customer_directory {
        DirectorySource::File(path) => {
            let directory = Directory::from_file(path)?;
            tracing::info!(customers = directory.len(), path = %path.display(), "customer directory loaded");
            Ok(Arc::new(directory))
        }
        DirectorySource::NatsKv(bucket) => {
            let handle = DirectoryHandle::default();
            loop {
                let loaded = async {
                    kv::load_and_watch(kv::open_bucket(jetstream, bucket).await?, handle.clone())
                        .await
                };
                match loaded.await {
                    Ok(watcher) => {
                        tokio::spawn(watcher);
                        return Ok(Arc::new(handle));
                    }
                    Err(err) => {
                        tracing::warn!(bucket, cause = %err, "loading the directory from NATS KV failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }
}

async fn participant_consumer(
    worker: ParticipantWorker,
    jetstream: jetstream::Context,
    subjects: Subjects,
    settings: ConsumerSettings,
    readiness: Arc<Readiness>,
    stop: watch::Receiver<bool>,
) {
    let mut stopping = stop.clone();
    let consumer = tokio::select! {
        consumer = ensure_consumer(&jetstream, &subjects, &settings) => consumer,
        _ = stopping.wait_for(|stopped| *stopped) => return,
    };
    readiness.consumer.store(true, Ordering::Release);
    let lag = tokio::spawn(report_lag(
        consumer.clone(),
        worker.metrics.clone(),
        stop.clone(),
    ));
    tracing::info!(stream = %settings.stream, consumer = frontline_shared::subject::RESOLVER_CONSUMER, "participant consumer started");
    consume(worker, consumer, settings.concurrency, stop).await;
    let _ = lag.await;
    tracing::info!("participant consumer stopped");
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

/// `resolver directory import FILE --bucket NAME`: loads the file into the bucket.
///
/// # Errors
/// When the file or NATS refuses.
pub async fn import_directory(
    config: &Config,
    file: &Path,
    bucket: &str,
) -> Result<usize, RunError> {
    let (client, _) = config.nats.connect("frontline-directory-import").await?;
    let jetstream = jetstream::new(client.clone());
    let count = kv::import(&jetstream, bucket, file).await?;
    let _ = client.flush().await;
    Ok(count)
}
