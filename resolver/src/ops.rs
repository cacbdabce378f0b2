//! Operations from the command line, with the resolver's own configuration: `twilio-setup`
//! (Twilio's webhook configuration, planned and applied), `doctor` (what is wrong, and where to
//! fix it) and `dlq` (dead letters listed, retried with the consumers' own code, purged). Each
//! prints plain lines for a person (or JSON for a script) and changes nothing it was not asked
//! to.

pub mod dlq;
pub mod doctor;
pub mod setup;

use crate::config::Config;
use crate::twilio::{self, TwilioClient};

/// The REST client of the resolver's configuration, for a command.
///
/// # Errors
/// A one-line reason when the credentials, `TWILIO_API_BASE` or `TWILIO_CA_FILE` are unusable.
pub fn twilio_client(config: &Config) -> Result<TwilioClient, String> {
    let credentials = config.twilio_credentials().ok_or(
        "no Twilio credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)",
    )?;
    twilio::check_api_base(&config.twilio_api_base).map_err(|err| err.to_string())?;
    let tls =
        twilio::tls_config(config.twilio_ca_file.as_deref()).map_err(|err| err.to_string())?;
    let requests = prometheus::IntCounterVec::new(
        prometheus::Opts::new("ops_twilio_requests", "REST requests of a command"),
        &["method", "status"],
    )
    .map_err(|err| err.to_string())?;
    Ok(TwilioClient::new(
        &config.twilio_api_base,
        &credentials,
        std::time::Duration::from_millis(config.twilio_timeout_ms),
        tls,
        requests,
    ))
}

/// `PUBLIC_URL` without a trailing slash.
///
/// # Errors
/// When it is not set or not `http(s)://...`.
pub fn public_url(config: &Config) -> Result<String, String> {
    let url = config
        .public_url
        .as_deref()
        .ok_or("PUBLIC_URL is not set: the origin Twilio calls, e.g. https://hooks.example.com")?;
    let url = url.trim_end_matches('/');
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url.to_owned())
    } else {
        Err(format!(
            "PUBLIC_URL {url:?} must start with https:// or http://"
        ))
    }
}

/// A JetStream context on the resolver's NATS, once connected (5 s at most).
///
/// # Errors
/// When NATS cannot be reached.
pub async fn jetstream(config: &Config) -> Result<async_nats::jetstream::Context, String> {
    let (client, mut connected) = config
        .nats
        .connect("frontline-ops")
        .await
        .map_err(|err| format!("NATS: {err}"))?;
    let up = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        connected.wait_for(|up| *up),
    )
    .await;
    if !matches!(up, Ok(Ok(_))) {
        return Err(format!(
            "NATS: no connection to {} within 5 s",
            config.nats.url
        ));
    }
    Ok(async_nats::jetstream::new(client))
}

/// The consumers' jobs, built from the configuration, for retrying dead letters.
///
/// # Errors
/// When the credentials or the directory are unusable.
pub async fn jobs(
    config: &Config,
    js: &async_nats::jetstream::Context,
) -> Result<dlq::Jobs, String> {
    let twilio = twilio_client(config)?;
    let directory = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        crate::directory::load(&config.customer_directory, js),
    )
    .await
    .map_err(|_| "the customer directory could not be loaded within 10 s".to_owned())?
    .map_err(|err| err.to_string())?;
    let metrics = crate::metrics::ResolverMetrics::new().map_err(|err| err.to_string())?;
    Ok(dlq::Jobs {
        participants: crate::participants::ParticipantWorker {
            twilio: twilio.clone(),
            directory: directory.clone(),
            metrics: metrics.clone(),
        },
        router: crate::routing::Router {
            twilio,
            directory,
            fallback_worker: config.routing_fallback_worker.clone(),
            metrics,
        },
    })
}
