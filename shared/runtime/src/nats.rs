//! Connecting to NATS: the connection settings both binaries share (`NATS_URL` and the usual
//! credentials) and a client that never gives up: it connects in the background when NATS is
//! down at start and reconnects by itself, so a service starts and recovers without a restart.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::watch;

use crate::secret::Secret;

/// NATS connection settings.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated for a cluster; `tls://` for TLS.
    /// Credentials never go in the URL (they would show in logs): use `NATS_USER` and
    /// `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_NKEY_SEED` or `NATS_CREDS`.
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true
    )]
    pub url: String,
    /// A NATS credentials (JWT + seed) file.
    #[arg(long = "nats-creds", env = "NATS_CREDS")]
    pub creds: Option<PathBuf>,
    /// User name for user/password authentication.
    #[arg(long = "nats-user", env = "NATS_USER", requires = "password")]
    pub user: Option<String>,
    /// Password for user/password authentication.
    #[arg(long = "nats-password", env = "NATS_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
    /// Token authentication.
    #[arg(long = "nats-token", env = "NATS_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// NKey seed authentication.
    #[arg(
        long = "nats-nkey-seed",
        env = "NATS_NKEY_SEED",
        hide_env_values = true
    )]
    pub nkey_seed: Option<Secret>,
    /// CA certificate file for `tls://` servers with a private CA.
    #[arg(long = "nats-ca-file", env = "NATS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// The prefix of reply subjects (the client's inboxes); both binaries must use the same.
    #[arg(long = "nats-inbox-prefix", env = "NATS_INBOX_PREFIX", default_value = DEFAULT_INBOX_PREFIX)]
    pub inbox_prefix: String,
}

/// The NATS clients' default inbox prefix.
pub const DEFAULT_INBOX_PREFIX: &str = "_INBOX";

/// NATS settings that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsSettingsError {
    /// A URL carries a user or password, which would be logged.
    #[error(
        "NATS_URL must not hold credentials (user:password@): set NATS_USER and NATS_PASSWORD (or NATS_TOKEN, NATS_NKEY_SEED, NATS_CREDS) instead"
    )]
    CredentialsInUrl,
    /// The inbox prefix is not a subject without wildcards.
    #[error("NATS_INBOX_PREFIX {0:?} must be dot-separated tokens without wildcards or spaces")]
    InboxPrefix(String),
}

impl NatsArgs {
    /// Checks what clap cannot: no credentials in the URL, a usable inbox prefix.
    ///
    /// # Errors
    /// A [`NatsSettingsError`] naming the variable.
    pub fn validate(&self) -> Result<(), NatsSettingsError> {
        let has_userinfo = |url: &str| {
            let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
            let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
            authority.contains('@')
        };
        if self.url.split(',').any(|url| has_userinfo(url.trim())) {
            return Err(NatsSettingsError::CredentialsInUrl);
        }
        let token_ok = |token: &str| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'*' | b'>' | b'.'))
        };
        if !self.inbox_prefix.split('.').all(token_ok) {
            return Err(NatsSettingsError::InboxPrefix(self.inbox_prefix.clone()));
        }
        Ok(())
    }

    /// The start of every reply subject of these clients: the inbox prefix and a dot.
    pub fn reply_prefix(&self) -> String {
        format!("{}.", self.inbox_prefix)
    }

    /// Settings for a server at `url` with no credentials (tests, local runs).
    pub fn plain(url: impl Into<String>) -> NatsArgs {
        NatsArgs {
            url: url.into(),
            creds: None,
            user: None,
            password: None,
            token: None,
            nkey_seed: None,
            ca_file: None,
            inbox_prefix: DEFAULT_INBOX_PREFIX.to_owned(),
        }
    }

    /// Starts a client named `name`. It returns at once, connected or not: the connection is
    /// made in the background and remade after every loss. The returned watch turns `true` on
    /// each (re)connection, so callers can redo set-up that the server may have lost.
    ///
    /// # Errors
    /// When the credentials file cannot be read or the URL list is malformed.
    pub async fn connect(
        &self,
        name: &str,
    ) -> Result<(Client, watch::Receiver<bool>), async_nats::ConnectError> {
        let mut options = match &self.creds {
            Some(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|err| {
                    async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::Io, err)
                })?,
            None => ConnectOptions::new(),
        };
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.expose().to_owned());
        }
        if let Some(token) = &self.token {
            options = options.token(token.expose().to_owned());
        }
        if let Some(seed) = &self.nkey_seed {
            options = options.nkey(seed.expose().to_owned());
        }
        if let Some(ca) = &self.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        let (connected_tx, connected_rx) = watch::channel(false);
        let options = options
            .name(name)
            .custom_inbox_prefix(&self.inbox_prefix)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(reconnect_delay)
            .event_callback(move |event| {
                let connected_tx = connected_tx.clone();
                async move { log_event(&event, &connected_tx) }
            });
        let urls: Vec<&str> = self.url.split(',').map(str::trim).collect();
        let client = options.connect(urls).await?;
        Ok((client, connected_rx))
    }
}

/// Waits until the server has processed everything `client` sent before (a subscription, say):
/// a request to a subject nobody listens on, which the server answers "no responders" only after
/// the commands before it. `Client::flush` only writes them to the socket.
///
/// # Errors
/// When the server does not answer within two seconds, or the client is not connected.
pub async fn round_trip(client: &Client) -> Result<(), async_nats::RequestError> {
    let request = async_nats::Request::new().timeout(Some(Duration::from_secs(2)));
    match client.send_request(client.new_inbox(), request).await {
        Err(err) if err.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
        Err(err) => Err(err),
        Ok(_) => Ok(()),
    }
}

/// Quick first retries (a restarted server is back within seconds), capped at two seconds.
fn reconnect_delay(attempts: usize) -> Duration {
    Duration::from_millis((attempts as u64 * 100).clamp(50, 2_000))
}

fn log_event(event: &Event, connected: &watch::Sender<bool>) {
    match event {
        Event::Connected => {
            tracing::info!("connected to NATS");
            connected.send_replace(true);
        }
        Event::Disconnected => {
            tracing::warn!("disconnected from NATS; reconnecting");
            connected.send_replace(false);
        }
        Event::Closed => {
            tracing::info!("NATS connection closed");
            connected.send_replace(false);
        }
        // Reconnection attempts fail with client errors until the server is back: already
        // reported by the one "disconnected" line, so only visible at debug.
        Event::ClientError(err) => tracing::debug!(cause = %err, "NATS client error"),
        Event::Draining => tracing::info!("draining the NATS connection"),
        other => tracing::warn!(event = %other, "NATS event"),
    }
}

/// Opens the KV bucket `bucket`, creating it when missing, on `storage`; entries expire after
/// `max_age` (`Duration::ZERO`: never).
///
/// The bucket's stream is created here with the KV layout rather than through
/// `create_key_value`: that call first reads the account info, whose nats-server 2.9 answer the
/// client cannot parse, so it fails on the servers Debian ships.
///
/// # Errors
/// When JetStream refuses.
pub async fn open_kv_bucket(
    jetstream: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
    storage: stream::StorageType,
) -> Result<kv::Store, async_nats::Error> {
    if let Ok(store) = jetstream.get_key_value(bucket).await {
        return Ok(store);
    }
    jetstream
        .get_or_create_stream(kv_stream_config(bucket, max_age, storage))
        .await?;
    Ok(jetstream.get_key_value(bucket).await?)
}

/// The stream of KV bucket `bucket`, laid out as the NATS clients expect: one value per key,
/// entries expiring after `max_age` (`Duration::ZERO`: never).
pub fn kv_stream_config(
    bucket: &str,
    max_age: Duration,
    storage: stream::StorageType,
) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        duplicate_window: if max_age.is_zero() {
            Duration::from_secs(120)
        } else {
            max_age.min(Duration::from_secs(120))
        },
        ..stream::Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_are_refused() {
        for url in [
            "nats://user:hunter2@127.0.0.1:4222",
            "nats://127.0.0.1:4222, tls://a:b@nats-2:4222",
            "token@nats:4222",
        ] {
            assert_eq!(
                NatsArgs::plain(url).validate(),
                Err(NatsSettingsError::CredentialsInUrl),
                "{url}"
            );
        }
        for url in [
            "nats://127.0.0.1:4222",
            "tls://n1:4222,tls://n2:4222",
            "nats://h/x@y",
        ] {
            assert_eq!(NatsArgs::plain(url).validate(), Ok(()), "{url}");
        }
    }

    #[test]
    fn the_inbox_prefix_is_checked() {
        let mut args = NatsArgs::plain("nats://127.0.0.1:4222");
        assert_eq!(args.reply_prefix(), "_INBOX.");
        for good in ["_INBOX", "_INBOX_frontline", "acme.inbox"] {
            args.inbox_prefix = good.into();
            assert_eq!(args.validate(), Ok(()), "{good}");
        }
        for bad in ["", "a.>", "*", "a..b", "a b", "a."] {
            args.inbox_prefix = bad.into();
            assert!(args.validate().is_err(), "{bad:?}");
        }
    }
}
