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
use frontline_runtime::systemd;
use frontline_shared::EventType;
use frontline_shared::subject::{QUEUE_GROUP, RESOLVER_CONSUMER, ROUTER_CONSUMER, Subjects};
use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::callbacks::{self, answers::CallbackSettings};
use crate::config::Config;
use crate::consumer::{Consumer, ConsumerSettings};
use crate::directory::{self, CustomerDirectory, DirectoryError};
use crate::metrics::ResolverMetrics;
use crate::participants::ParticipantWorker;
use crate::pre;
use crate::routing::Router;
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
    router: AtomicBool,
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
            Err("not yet subscribed to pre-events and callbacks".into())
        } else if self.consumer_required && !flag(&self.consumer) {
            Err("participant consumer not ready".into())
        } else if self.consumer_required && !flag(&self.router) {
            Err("routing consumer not ready".into())
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
    let callback_settings = CallbackSettings {
        proxy_addresses: config.proxy_addresses.clone(),
        templates: config.templates.load().map_err(RunError::Config)?,
    };
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
        systemd::stopping();
        stop_tx.send_replace(true);
    };
    tokio::pin!(shutdown);

    let directory = tokio::select! {
        loaded = directory::load(&config.customer_directory, &jetstream) => loaded?,
        () = &mut shutdown => return finish(admin).await,
    };
    set(&readiness.directory);

    let reply_prefix = config.nats.reply_prefix();
    let pre_requests = pre::join_queue_group(&client, subjects.pre_wildcard()).await?;
    let callback_requests = pre::join_queue_group(&client, subjects.callback_wildcard()).await?;
    let serving = vec![
        tokio::spawn(pre::serve(
            client.clone(),
            pre_requests,
            pre::Context {
                subjects: subjects.clone(),
                reply_prefix: reply_prefix.clone(),
                directory: directory.clone(),
                metrics: metrics.clone(),
            },
        )),
        tokio::spawn(callbacks::serve(
            client.clone(),
            callback_requests,
            callbacks::Context {
                subjects: subjects.clone(),
                reply_prefix,
                directory: directory.clone(),
                settings: callback_settings,
                metrics: metrics.clone(),
            },
        )),
    ];
    let (subscribed_client, subscribed) = (client.clone(), readiness.clone());
    tokio::spawn(async move {
        // One round trip confirms both subscriptions: the server handles commands in order.
        pre::confirm_subscribed(&subscribed_client).await;
        set(&subscribed.subscribed);
    });
    tracing::info!(subjects = %format!("{} {}", subjects.pre_wildcard(), subjects.callback_wildcard()), queue_group = QUEUE_GROUP, "resolver started");
    systemd::ready("serving pre-events and callbacks");

    let consumers = match credentials {
        Some(credentials) => {
            let twilio = TwilioClient::new(
                &config.twilio_api_base,
                &credentials,
                Duration::from_millis(config.twilio_timeout_ms),
                tls,
                metrics.twilio_api_requests.clone(),
            );
            let running = Running {
                config: &config,
                jetstream: &jetstream,
                subjects: &subjects,
                readiness: &readiness,
                connected: &connected,
                stop: &stop,
            };
            running.consumers(twilio, directory, &metrics)
        }
        None => Vec::new(),
    };

    (&mut shutdown).await;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    if tokio::time::timeout(grace, drain(&client, consumers, serving))
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

/// What starting the durable consumers needs from `run`.
struct Running<'a> {
    config: &'a Config,
    jetstream: &'a jetstream::Context,
    subjects: &'a Subjects,
    readiness: &'a Arc<Readiness>,
    connected: &'a watch::Receiver<bool>,
    stop: &'a watch::Receiver<bool>,
}

impl Running<'_> {
    /// Starts the participant consumer and the router, each flagging readiness once it exists.
    fn consumers(
        &self,
        twilio: TwilioClient,
        directory: Arc<dyn CustomerDirectory>,
        metrics: &ResolverMetrics,
    ) -> Vec<JoinHandle<()>> {
        let settings = |name, filter_subject| ConsumerSettings {
            name,
            filter_subject,
            stream: self.config.stream_name.clone(),
            ack_wait: self.config.ack_wait(),
            concurrency: self.config.consumer_concurrency,
            replicas: self.config.stream_replicas,
            max_deliver: self.config.max_deliver,
        };
        let participants = Consumer {
            job: ParticipantWorker {
                twilio: twilio.clone(),
                directory: directory.clone(),
                metrics: metrics.clone(),
            },
            jetstream: self.jetstream.clone(),
            subjects: self.subjects.clone(),
            settings: settings(
                RESOLVER_CONSUMER,
                self.subjects.post_filter(EventType::ParticipantAdded),
            ),
            metrics: Some(metrics.clone()),
        };
        let router = Consumer {
            job: Router {
                twilio,
                directory,
                fallback_worker: self.config.routing_fallback_worker.clone(),
                metrics: metrics.clone(),
            },
            jetstream: self.jetstream.clone(),
            subjects: self.subjects.clone(),
            settings: settings(ROUTER_CONSUMER, self.subjects.routing_wildcard()),
            metrics: None,
        };
        let (first, second) = (self.readiness.clone(), self.readiness.clone());
        vec![
            tokio::spawn(participants.run(
                move || set(&first.consumer),
                self.connected.clone(),
                self.stop.clone(),
            )),
            tokio::spawn(router.run(
                move || set(&second.router),
                self.connected.clone(),
                self.stop.clone(),
            )),
        ]
    }
}

/// After the stop signal: the consumer finishes what it holds, then the connection is drained,
/// which answers the pre-event requests already received.
async fn drain(
    client: &async_nats::Client,
    consumers: Vec<JoinHandle<()>>,
    serving: Vec<JoinHandle<()>>,
) {
    for consumer in consumers {
        let _ = consumer.await;
    }
    if client.connection_state() == State::Connected {
        tracing::info!("draining: answering the requests already received");
        if let Err(err) = client.drain().await {
            tracing::warn!(cause = %err, "draining NATS failed");
        }
        for loop_ in serving {
            let _ = loop_.await;
        }
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
