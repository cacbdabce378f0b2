//! Wiring: load the directory, connect, join the queue group, serve the admin routes, and on
//! shutdown drain (answer what has arrived, then close) within the grace period.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use frontline_ingress::admin::{ReadinessCheck, serve_admin};
use frontline_shared::subject::QUEUE_GROUP;
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::{Config, DirectorySource};
use crate::directory::{Directory, DirectoryError};
use crate::metrics::ResolverMetrics;

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
    let directory = match &config.customer_directory {
        DirectorySource::File(path) => Arc::new(Directory::from_file(path)?),
    };
    tracing::info!(customers = directory.len(), "customer directory loaded");
    let metrics = ResolverMetrics::new()?;
    let (client, _connected) = config.nats.connect("frontline-resolver").await?;
    let subscriber = client
        .queue_subscribe(subjects.pre_wildcard(), QUEUE_GROUP.to_owned())
        .await?;
    let pre = tokio::spawn(crate::pre::serve(
        client.clone(),
        subscriber,
        directory,
        metrics.clone(),
    ));

    // The subscription counts once the server has it: a flush round trip after subscribing.
    let subscribed = Arc::new(AtomicBool::new(false));
    let flusher = (client.clone(), subscribed.clone());
    tokio::spawn(async move {
        while flusher.0.flush().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        flusher.1.store(true, Ordering::Release);
    });
    let ready_client = client.clone();
    let ready: ReadinessCheck = Arc::new(move || {
        let state = ready_client.connection_state();
        let subscribed = subscribed.load(Ordering::Acquire);
        async move {
            match (state, subscribed) {
                (State::Connected, true) => Ok(()),
                (State::Connected, false) => Err("not yet subscribed to pre-events".to_owned()),
                _ => Err("NATS not connected".to_owned()),
            }
        }
        .boxed()
    });
    let (admin_stop, admin_stopped) = oneshot::channel::<()>();
    let admin = tokio::spawn(serve_admin(
        admin_listener,
        metrics.registry().clone(),
        ready,
        admin_stopped.map(|_| ()),
    ));
    tracing::info!(subject = %subjects.pre_wildcard(), queue_group = QUEUE_GROUP, "resolver started");

    shutdown.await;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    if client.connection_state() == State::Connected {
        tracing::info!("draining: answering the requests already received");
        let drained = async {
            if let Err(err) = client.drain().await {
                tracing::warn!(cause = %err, "draining NATS failed");
            }
            let _ = pre.await;
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::warn!("grace period over before the drain finished");
        }
    } else {
        // Nothing can be answered without a connection, so there is nothing to drain.
        tracing::warn!("NATS not connected at shutdown; stopping without a drain");
    }
    let _ = admin_stop.send(());
    let _ = admin.await;
    tracing::info!("resolver stopped");
    Ok(())
}
