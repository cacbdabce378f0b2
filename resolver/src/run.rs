//! Wiring and readiness: connect, load the directory, join the queue group, start the
//! participant consumer, serve the admin routes, and on shutdown stop pulling, finish the work in
//! hand and drain, within the grace period. What each piece does is in its own module.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream;
use frontline_runtime::admin::{ReadinessCheck, serve_admin};
use frontline_shared::subject::QUEUE_GROUP;
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::directory::{self, CustomerDirectory, DirectoryError};
use crate::metrics::ResolverMetrics;
use crate::participants::{self, ConsumerSettings, ParticipantWorker};
use crate::pre;
use crate::twilio::{self, TwilioClient};

/// Why the resolver could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is unusable (exit code 64).
    #[error("configuration: {0}")]
    Config(String),
    /// The customer directory could not be loaded.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
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

fn set(flag: &AtomicBool) {
    flag.store(true, Ordering::Release);
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
    config
        .nats
        .validate()
        .map_err(|err| RunError::Config(err.to_string()))?;
    if config.max_deliver < 1 || config.consumer_concurrency == 0 {
        return Err(RunError::Config(
            "MAX_DELIVER and CONSUMER_CONCURRENCY must be at least 1".into(),
        ));
    }
    let metrics = ResolverMetrics::new()?;
    twilio::check_api_base(&config.twilio_api_base)
        .map_err(|err| RunError::Config(err.to_string()))?;
    let tls = twilio::tls_config(config.twilio_ca_file.as_deref())
        .map_err(|err| RunError::Config(err.to_string()))?;
    let credentials = config.twilio_credentials();
    if credentials.is_none() {
        tracing::warn!(
            "no Twilio credentials (TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN, or TWILIO_API_KEY + TWILIO_API_SECRET): onParticipantAdded updates are off"
        );
    }
    let (client, connected) = config.nats.connect("frontline-resolver").await?;
    let jetstream = jetstream::new(client.clone());
    let (stop_tx, stop) = watch::channel(false);

    let readiness = Arc::new(Readiness {
        consumer_required: credentials.is_some(),
        ..Readiness::default()
    });
    let admin = spawn_admin(admin_listener, &metrics, &client, &readiness, stop.clone());
    let shutdown = async move {
        shutdown.await;
        stop_tx.send_replace(true);
    };
    tokio::pin!(shutdown);

    let directory = tokio::select! {
        loaded = directory::load(&config.customer_directory, &jetstream) => loaded?,
        () = &mut shutdown => return finish(admin).await,
    };
    set(&readiness.directory);

    let subscriber = pre::subscribe(&client, &subjects).await?;
    let pre = tokio::spawn(pre::serve(
        client.clone(),
        subscriber,
        pre::Context {
            subjects: subjects.clone(),
            reply_prefix: config.nats.reply_prefix(),
            directory: directory.clone(),
            metrics: metrics.clone(),
        },
    ));
    let (subscribed_client, subscribed) = (client.clone(), readiness.clone());
    tokio::spawn(async move {
        pre::confirm_subscribed(&subscribed_client).await;
        set(&subscribed.subscribed);
    });
    tracing::info!(subject = %subjects.pre_wildcard(), queue_group = QUEUE_GROUP, "resolver started");

    let consumer = credentials.map(|credentials| {
        let twilio = TwilioClient::new(
            &config.twilio_api_base,
            &credentials,
            Duration::from_millis(config.twilio_timeout_ms),
            tls,
            metrics.twilio_api_requests.clone(),
        );
        let worker = participant_worker(&config, twilio, directory, &metrics, &jetstream);
        let settings = ConsumerSettings {
            stream: config.stream_name.clone(),
            ack_wait: config.ack_wait(),
            concurrency: config.consumer_concurrency,
            replicas: config.stream_replicas,
        };
        let ready = readiness.clone();
        tokio::spawn(participants::run_consumer(
            worker,
            settings,
            move || set(&ready.consumer),
            connected.clone(),
            stop.clone(),
        ))
    });

    (&mut shutdown).await;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    if tokio::time::timeout(grace, drain(&client, consumer, pre))
        .await
        .is_err()
    {
        tracing::warn!("grace period over before the work in hand finished");
    }
    finish(admin).await
}

/// Serves `/metrics`, `/livez` and `/readyz` until `stop` turns `true`.
fn spawn_admin(
    listener: TcpListener,
    metrics: &ResolverMetrics,
    client: &async_nats::Client,
    readiness: &Arc<Readiness>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let (client, readiness) = (client.clone(), readiness.clone());
    let ready: ReadinessCheck = Arc::new(move || {
        let verdict = readiness.check(client.connection_state());
        async move { verdict }.boxed()
    });
    tokio::spawn(serve_admin(
        listener,
        metrics.registry().clone(),
        ready,
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        },
    ))
}

fn participant_worker(
    config: &Config,
    twilio: TwilioClient,
    directory: Arc<dyn CustomerDirectory>,
    metrics: &ResolverMetrics,
    jetstream: &jetstream::Context,
) -> ParticipantWorker {
    ParticipantWorker {
        twilio,
        directory,
        metrics: metrics.clone(),
        jetstream: jetstream.clone(),
        subjects: config.subjects().unwrap_or_default(),
        max_deliver: config.max_deliver,
    }
}

/// After the stop signal: the consumer finishes what it holds, then the connection is drained,
/// which answers the pre-event requests already received.
async fn drain(client: &async_nats::Client, consumer: Option<JoinHandle<()>>, pre: JoinHandle<()>) {
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
}

async fn finish(admin: JoinHandle<()>) -> Result<(), RunError> {
    let _ = admin.await;
    tracing::info!("resolver stopped");
    Ok(())
}
