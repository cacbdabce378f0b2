//! The ingress configuration: every setting from a flag or its environment variable (the names
//! of SPEC.md), parsed into real types and validated once at start.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use frontline_shared::subject::{self, Subjects};

use crate::cache::CacheSettings;
use crate::signature::{PublicUrl, SharedKeys, SignatureVerifier};
use crate::token_bucket::TokenBucket;
use frontline_runtime::nats::NatsArgs;
use frontline_runtime::secret::Tokens;
use frontline_runtime::telemetry::TelemetryArgs;

/// What a pre-event gets when no resolver answers in time (or NATS is down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fallback {
    /// 200 `{}`: the action goes through unmodified.
    Accept,
    /// 503: the action is rejected.
    Reject,
}

/// The ingress: verifies Twilio Conversations webhooks and hands them to NATS.
#[derive(Debug, Clone, Parser)]
#[command(name = "ingress", version, about)]
pub struct Config {
    /// Public listener for Twilio's webhooks.
    #[arg(long, env = "INGRESS_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Admin listener: /metrics, /livez, /readyz. Keep it private.
    #[arg(long, env = "INGRESS_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    /// The origin Twilio is configured with, e.g. https://hooks.example.com.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<PublicUrl>,
    /// Twilio auth token(s), comma-separated during a rotation.
    #[arg(
        long = "twilio-auth-token",
        env = "TWILIO_AUTH_TOKEN",
        hide_env_values = true
    )]
    pub auth_tokens: Option<Tokens>,
    /// A NATS KV bucket of auth tokens per account (key = AccountSid, value = its tokens,
    /// comma-separated), watched, for platforms with many subaccounts.
    #[arg(long, env = "TWILIO_AUTH_TOKEN_BUCKET")]
    pub auth_token_bucket: Option<String>,
    /// Twilio SharedKey secrets, comma-separated KEYID:SECRET (two during a rotation), checked
    /// when a request names one in X-Twilio-Webhooks-Signature-Settings.
    #[arg(long, env = "TWILIO_SHARED_KEYS", hide_env_values = true)]
    pub shared_keys: Option<SharedKeys>,
    /// Accept unsigned webhooks (local trials only; never in production).
    #[arg(long, env = "INSECURE_SKIP_SIGNATURE", default_value_t = false,
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub insecure_skip_signature: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 65_536)]
    pub max_body_bytes: usize,
    /// How long a pre-event waits for a resolver, in milliseconds (under 5000).
    #[arg(long, env = "PRE_EVENT_TIMEOUT_MS", default_value_t = 3_000)]
    pub pre_event_timeout_ms: u64,
    /// How long a Frontline callback (CRM, outgoing conversation, templates) waits for a
    /// resolver, in milliseconds (under Frontline's 6000).
    #[arg(long, env = "CALLBACK_TIMEOUT_MS", default_value_t = 5_000)]
    pub callback_timeout_ms: u64,
    /// The answer when no resolver answers in time.
    #[arg(long, env = "PRE_EVENT_FALLBACK", value_enum, default_value_t = Fallback::Accept)]
    pub pre_event_fallback: Fallback,
    /// How long a pre-event answer is kept for Twilio's retries (same idempotency token), in
    /// seconds; 0 turns the cache off.
    #[arg(long, env = "PRE_EVENT_CACHE_TTL_SECS", default_value_t = 300)]
    pub pre_event_cache_ttl_secs: u64,
    /// The KV bucket of the answer cache, shared by all ingress replicas
    /// (default: `<SUBJECT_PREFIX>-pre-answers`).
    #[arg(long, env = "PRE_EVENT_CACHE_BUCKET")]
    pub pre_event_cache_bucket: Option<String>,
    /// The most memory the answer cache may take on the NATS server, in bytes; when full, the
    /// oldest answers make room (at least 1024).
    #[arg(long, env = "PRE_EVENT_CACHE_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub pre_event_cache_max_bytes: u64,
    /// How long one try of storing a post-event waits for JetStream's PubAck, in milliseconds
    /// (never past what is left of PUBLISH_BUDGET_MS).
    #[arg(long, env = "PUBLISH_TIMEOUT_MS", default_value_t = 3_000)]
    pub publish_timeout_ms: u64,
    /// How long a post-event (or routing callback) keeps trying to be stored while the failure
    /// can pass (no leader, reconnecting, no PubAck), in milliseconds, before the 503; under 5000.
    #[arg(long, env = "PUBLISH_BUDGET_MS", default_value_t = 4_000)]
    pub publish_budget_ms: u64,
    /// A local directory for post-events that cannot be stored within PUBLISH_BUDGET_MS: they
    /// are appended there (fsync'd), answered 200, and forwarded when NATS is back. Off when
    /// unset. The event then sits on this machine's disk until forwarded.
    #[arg(long, env = "SPOOL_DIR")]
    pub spool_dir: Option<std::path::PathBuf>,
    /// The most the spool may hold not yet forwarded, in bytes; beyond it post-events get 503.
    #[arg(long, env = "SPOOL_MAX_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub spool_max_bytes: u64,
    /// Webhook requests handled at once; beyond it pre-events take the fallback, post-events 503.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 4_096)]
    pub max_in_flight: usize,
    /// Open connections at once; beyond it new connections are closed.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4_096)]
    pub max_connections: usize,
    /// Time a client has to send a whole request (headers and body), in seconds; else 408 and
    /// the connection is closed.
    #[arg(long, env = "REQUEST_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub request_read_timeout_secs: u64,
    /// Time to finish in-flight requests after SIGTERM/SIGINT, in seconds.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 25)]
    pub shutdown_grace_secs: u64,
    /// First token of every subject.
    #[arg(long, env = "SUBJECT_PREFIX", default_value = subject::DEFAULT_PREFIX)]
    pub subject_prefix: String,
    /// The post-event stream.
    #[arg(long, env = "STREAM_NAME", default_value = subject::DEFAULT_STREAM)]
    pub stream_name: String,
    /// How long the stream keeps events, e.g. 7d, 12h.
    #[arg(long, env = "STREAM_MAX_AGE", default_value = "7d", value_parser = humantime::parse_duration)]
    pub stream_max_age: Duration,
    /// How much the stream keeps, in bytes; when full it refuses new events (503).
    #[arg(long, env = "STREAM_MAX_BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    pub stream_max_bytes: u64,
    /// How long a stored event's id is remembered, so a retry is not stored twice, e.g. 2m.
    #[arg(long, env = "STREAM_DUPLICATE_WINDOW", default_value = "2m", value_parser = humantime::parse_duration)]
    pub stream_duplicate_window: Duration,
    /// Stream replicas (3 on a cluster).
    #[arg(long, env = "STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Logging and trace export.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Neither a signature configuration nor the explicit opt-out.
    #[error(
        "PUBLIC_URL and TWILIO_AUTH_TOKEN (or TWILIO_AUTH_TOKEN_BUCKET, TWILIO_SHARED_KEYS) are required (or INSECURE_SKIP_SIGNATURE=true for local trials)"
    )]
    MissingSignatureConfig,
    /// A timeout at or over Twilio's 5 s budget.
    #[error("PRE_EVENT_TIMEOUT_MS must be between 1 and 4999, got {0}")]
    PreEventTimeout(u64),
    /// Another invalid value.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Checks what clap cannot, and builds the signature verifier (`None` when signatures are
    /// explicitly skipped).
    ///
    /// # Errors
    /// A [`ConfigError`] saying which setting is wrong.
    pub fn validate(&self) -> Result<Option<SignatureVerifier>, ConfigError> {
        if !(1..5_000).contains(&self.pre_event_timeout_ms) {
            return Err(ConfigError::PreEventTimeout(self.pre_event_timeout_ms));
        }
        Subjects::new(&self.subject_prefix).map_err(ConfigError::Invalid)?;
        if !(1..5_000).contains(&self.publish_budget_ms) || self.publish_timeout_ms == 0 {
            return Err(ConfigError::Invalid(format!(
                "PUBLISH_BUDGET_MS must be between 1 and 4999 (Twilio waits 5 s), got {}; PUBLISH_TIMEOUT_MS at least 1",
                self.publish_budget_ms
            )));
        }
        if !(1..6_000).contains(&self.callback_timeout_ms) {
            return Err(ConfigError::Invalid(format!(
                "CALLBACK_TIMEOUT_MS must be between 1 and 5999 (Frontline waits 6 s), got {}",
                self.callback_timeout_ms
            )));
        }
        self.nats
            .validate()
            .map_err(|err| ConfigError::Invalid(err.to_string()))?;
        if let Some(bucket) = self
            .pre_event_cache_bucket
            .as_ref()
            .filter(|b| !subject::is_token(b))
        {
            return Err(ConfigError::Invalid(format!(
                "PRE_EVENT_CACHE_BUCKET {bucket:?} is not a valid name"
            )));
        }
        if !(1024..=i64::MAX as u64).contains(&self.pre_event_cache_max_bytes) {
            return Err(ConfigError::Invalid(format!(
                "PRE_EVENT_CACHE_MAX_BYTES {} is below 1024",
                self.pre_event_cache_max_bytes
            )));
        }
        if !(1024..=i64::MAX as u64).contains(&self.stream_max_bytes) {
            return Err(ConfigError::Invalid(format!(
                "STREAM_MAX_BYTES {} is below 1024",
                self.stream_max_bytes
            )));
        }
        if self.stream_duplicate_window.is_zero()
            || (!self.stream_max_age.is_zero()
                && self.stream_duplicate_window > self.stream_max_age)
        {
            return Err(ConfigError::Invalid(
                "STREAM_DUPLICATE_WINDOW must be above zero and at most STREAM_MAX_AGE".into(),
            ));
        }
        if !subject::is_token(&self.stream_name) {
            return Err(ConfigError::Invalid(format!(
                "STREAM_NAME {:?} is not a valid name",
                self.stream_name
            )));
        }
        if self.max_in_flight == 0
            || self.max_connections == 0
            || self.stream_replicas == 0
            || self.request_read_timeout_secs == 0
        {
            return Err(ConfigError::Invalid(
                "MAX_IN_FLIGHT, MAX_CONNECTIONS, STREAM_REPLICAS and REQUEST_READ_TIMEOUT_SECS must be at least 1".into(),
            ));
        }
        if let Some(bucket) = self
            .auth_token_bucket
            .as_ref()
            .filter(|b| !subject::is_token(b))
        {
            return Err(ConfigError::Invalid(format!(
                "TWILIO_AUTH_TOKEN_BUCKET {bucket:?} is not a valid name"
            )));
        }
        let tokens = self.auth_tokens.clone().unwrap_or_default();
        let shared_keys = self.shared_keys.clone().unwrap_or_default();
        let any_secret =
            !tokens.is_empty() || self.auth_token_bucket.is_some() || !shared_keys.is_empty();
        match &self.public_url {
            Some(url) if any_secret => {
                let mut verifier =
                    SignatureVerifier::new(tokens, url.clone()).with_shared_keys(shared_keys);
                if let Some(bucket) = &self.auth_token_bucket {
                    verifier = verifier.with_bucket(TokenBucket::new(bucket.clone()));
                }
                Ok(Some(verifier))
            }
            _ if self.insecure_skip_signature => Ok(None),
            _ => Err(ConfigError::MissingSignatureConfig),
        }
    }

    /// The answer cache's settings, `None` when it is off.
    pub fn cache(&self) -> Option<CacheSettings> {
        (self.pre_event_cache_ttl_secs > 0).then(|| CacheSettings {
            bucket: self
                .pre_event_cache_bucket
                .clone()
                .unwrap_or_else(|| format!("{}-pre-answers", self.subject_prefix)),
            ttl: Duration::from_secs(self.pre_event_cache_ttl_secs),
            max_bytes: self.pre_event_cache_max_bytes as i64,
        })
    }

    /// The subjects of this deployment (call after [`Config::validate`]).
    pub fn subjects(&self) -> Subjects {
        Subjects::new(&self.subject_prefix).unwrap_or_default()
    }

    /// A configuration for tests and embedding: defaults, with `nats_url` and signatures
    /// checked against `public_url` and `token`.
    pub fn for_test(nats_url: &str, public_url: &str, token: &str) -> Config {
        let mut config = Config::parse_from(["ingress"]);
        config.nats = NatsArgs::plain(nats_url);
        config.public_url = Some(public_url.parse().expect("a valid test PUBLIC_URL"));
        config.auth_tokens = Some(token.parse().expect("tokens always parse"));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_start_without_signature_config() {
        let mut config = Config::parse_from(["ingress"]);
        config.public_url = None;
        config.auth_tokens = None;
        assert_eq!(
            config.validate().unwrap_err(),
            ConfigError::MissingSignatureConfig
        );
        config.insecure_skip_signature = true;
        assert!(config.validate().unwrap().is_none());
    }

    #[test]
    fn rejects_a_pre_event_timeout_over_the_budget() {
        let mut config = Config::for_test("nats://127.0.0.1:1", "https://x.example", "t");
        config.pre_event_timeout_ms = 5_000;
        assert_eq!(
            config.validate().unwrap_err(),
            ConfigError::PreEventTimeout(5_000)
        );
        config.pre_event_timeout_ms = 4_999;
        assert!(config.validate().unwrap().is_some());
    }

    #[test]
    fn rejects_a_tiny_answer_cache() {
        let mut config = Config::for_test("nats://127.0.0.1:1", "https://x.example", "t");
        config.pre_event_cache_max_bytes = 1023;
        assert!(matches!(
            config.validate().unwrap_err(),
            ConfigError::Invalid(message) if message.contains("PRE_EVENT_CACHE_MAX_BYTES")
        ));
        config.pre_event_cache_max_bytes = 1024;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn parses_flags_and_durations() {
        let config = Config::parse_from([
            "ingress",
            "--stream-max-age",
            "12h",
            "--pre-event-fallback",
            "reject",
            "--insecure-skip-signature",
            "true",
        ]);
        assert_eq!(config.stream_max_age, Duration::from_secs(12 * 3600));
        assert_eq!(config.pre_event_fallback, Fallback::Reject);
        assert!(config.insecure_skip_signature);
    }
}
