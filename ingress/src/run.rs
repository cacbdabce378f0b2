//! Wiring: connect, build the shared state, serve both listeners, and shut down in order
//! (stop accepting, finish in-flight requests, drain NATS) within the grace period.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;

use crate::broker::{Broker, NatsBroker, StreamSettings};
use crate::config::{Config, ConfigError};
use crate::handler::WebhookHandler;
use crate::metrics::IngressMetrics;
use crate::spool::Spool;
use crate::token_bucket::TokenBucket;
use crate::webhook::WebhookReader;
use frontline_runtime::admin::{ReadinessCheck, serve_admin};
use frontline_runtime::server::{MAX_HEADER_BYTES, ServeOptions, serve};
use frontline_runtime::systemd;

/// Why the ingress could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is unusable (exit code 64).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The NATS settings are unusable (a credentials file that cannot be read, say).
    #[error("NATS: {0}")]
    Nats(#[from] async_nats::ConnectError),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Runs the ingress on the given listeners until `shutdown` resolves, then shuts down
/// gracefully. NATS need not be up: the ingress starts, reports not ready, and connects when it
/// can.
///
/// # Errors
/// A [`RunError`] when the configuration or NATS settings are unusable.
pub async fn run(
    listener: TcpListener,
    admin_listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let signature = config.validate()?;
    if signature.is_none() {
        tracing::warn!("INSECURE_SKIP_SIGNATURE=true: webhook signatures are NOT checked");
    }
    let metrics = IngressMetrics::new()?;
    let subjects = config.subjects();
    let (client, connected) = config.nats.connect("frontline-ingress").await?;
    let broker = NatsBroker::new(
        client.clone(),
        config.stream_name.clone(),
        Duration::from_millis(config.publish_timeout_ms),
        Duration::from_millis(config.publish_budget_ms),
        metrics.clone(),
    );
    // Background upkeep (stream, answer cache) holds no work in hand: it ends when `stop` does.
    let (stop, stopped) = watch::channel(false);
    let mut upkeep = spawn_upkeep(&config, &broker, &metrics, connected, stopped.clone());
    let bucket = signature.as_ref().and_then(|s| s.bucket()).cloned();
    if let Some(bucket) = bucket.clone() {
        let jetstream = async_nats::jetstream::new(client.clone());
        let mut stopped = stopped.clone();
        upkeep.push(tokio::spawn(async move {
            tokio::select! {
                () = bucket.maintain(jetstream) => {},
                _ = stopped.wait_for(|stopped| *stopped) => {},
            }
        }));
    }

    let spool = match &config.spool_dir {
        Some(dir) => Some(
            Spool::open(dir, config.spool_max_bytes, metrics.clone()).map_err(|err| {
                ConfigError::Invalid(format!("SPOOL_DIR {}: {err}", dir.display()))
            })?,
        ),
        None => None,
    };
    if let Some(spool) = spool.clone() {
        let forwarding = Arc::new(broker.clone());
        let mut stopped = stopped.clone();
        upkeep.push(tokio::spawn(async move {
            tokio::select! {
                () = spool.forward(forwarding) => {},
                _ = stopped.wait_for(|stopped| *stopped) => {},
            }
        }));
    }
    let app = Arc::new(WebhookHandler {
        broker: broker.clone(),
        reader: WebhookReader::new(signature.clone()),
        subjects,
        metrics: metrics.clone(),
        max_body_bytes: config.max_body_bytes,
        pre_event_timeout: Duration::from_millis(config.pre_event_timeout_ms),
        fallback: config.pre_event_fallback,
        in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
        callback_timeout: Duration::from_millis(config.callback_timeout_ms),
        spool,
    });

    let (admin_stop, admin_stopped) = oneshot::channel::<()>();
    let admin = spawn_admin(
        admin_listener,
        &metrics,
        &broker,
        bucket,
        admin_stopped.map(|_| ()),
    );

    tracing::info!(
        listen = %listener.local_addr().map_or_else(|_| "?".into(), |a| a.to_string()),
        nats = %config.nats.url,
        stream = %config.stream_name,
        "ingress started"
    );
    let options = ServeOptions {
        request_read_timeout: Duration::from_secs(config.request_read_timeout_secs),
        max_header_bytes: MAX_HEADER_BYTES,
        max_connections: config.max_connections,
        grace: Duration::from_secs(config.shutdown_grace_secs),
    };
    let handler = move |request| app.clone().handle(request);
    systemd::ready("serving webhooks");
    let shutdown = async move {
        shutdown.await;
        systemd::stopping();
    };
    let finished = serve(listener, handler, options, shutdown).await;
    tracing::info!(
        finished_in_grace = finished,
        "stopped accepting; draining NATS"
    );

    stop.send_replace(true);
    for task in upkeep {
        let _ = task.await;
    }
    match tokio::time::timeout(Duration::from_secs(5), client.drain()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(cause = %err, "draining NATS failed"),
        Err(_) => tracing::warn!("draining NATS timed out"),
    }
    let _ = admin_stop.send(());
    let _ = admin.await;
    tracing::info!("ingress stopped");
    Ok(())
}

/// How often the stream's size is read for `frontline_ingress_stream_bytes`.
const STREAM_USAGE_INTERVAL: Duration = Duration::from_secs(10);

/// Keeps the stream created and up to date, and opens the answer cache, until `stopped`.
fn spawn_upkeep(
    config: &Config,
    broker: &NatsBroker,
    metrics: &IngressMetrics,
    connected: watch::Receiver<bool>,
    stopped: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let until_stopped = |task: BoxFuture<'static, ()>| {
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = task => {},
                _ = stopped.wait_for(|stopped| *stopped) => {},
            }
        })
    };
    let settings = StreamSettings {
        name: config.stream_name.clone(),
        subjects: vec![
            config.subjects().post_wildcard(),
            config.subjects().routing_wildcard(),
        ],
        max_age: config.stream_max_age,
        max_bytes: config.stream_max_bytes as i64,
        duplicate_window: config.stream_duplicate_window,
        replicas: config.stream_replicas,
    };
    let maintainer = broker.clone();
    let mut upkeep = vec![until_stopped(
        async move { maintainer.maintain_stream(settings, connected).await }.boxed(),
    )];
    metrics.stream_max_bytes.set(config.stream_max_bytes as i64);
    let (reporter, bytes) = (broker.clone(), metrics.stream_bytes.clone());
    upkeep.push(until_stopped(
        async move {
            reporter
                .report_stream_usage(bytes, STREAM_USAGE_INTERVAL)
                .await
        }
        .boxed(),
    ));
    if let Some(cache) = config.cache() {
        let cacher = broker.clone();
        upkeep.push(until_stopped(
            async move { cacher.open_cache(cache).await }.boxed(),
        ));
    }
    upkeep
}

/// Serves `/metrics`, `/livez` and `/readyz` (the broker's readiness) until `stopped`.
fn spawn_admin(
    listener: TcpListener,
    metrics: &IngressMetrics,
    broker: &NatsBroker,
    bucket: Option<TokenBucket>,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let broker = broker.clone();
    let ready: ReadinessCheck = Arc::new(move || {
        let (broker, bucket) = (broker.clone(), bucket.clone());
        async move {
            if let Some(bucket) = bucket.filter(|b| !b.loaded()) {
                return Err(format!("token bucket {} not read yet", bucket.name()));
            }
            broker.ready().await
        }
        .boxed()
    });
    tokio::spawn(serve_admin(
        listener,
        metrics.registry().clone(),
        ready,
        stopped,
    ))
}
