//! The resolver configuration: flags and environment variables (the names of SPEC.md), parsed
//! into real types and validated once at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use frontline_runtime::nats::NatsArgs;
use frontline_runtime::secret::{Secret, Tokens};
use frontline_runtime::telemetry::TelemetryArgs;
use frontline_shared::subject::{self, Subjects};

use crate::callbacks::TemplatesSource;
use crate::callbacks::answers::ProxyAddresses;
use crate::twilio::Credentials;

/// Where the customer directory comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectorySource {
    /// `file:PATH`: a JSON array of Frontline customer records.
    File(PathBuf),
    /// `nats-kv:BUCKET`: one key per `customer_id`, watched for changes.
    NatsKv(String),
}

impl std::str::FromStr for DirectorySource {
    type Err = String;

    fn from_str(value: &str) -> Result<DirectorySource, String> {
        match value.split_once(':') {
            Some(("file", path)) if !path.is_empty() => Ok(DirectorySource::File(path.into())),
            Some(("nats-kv", bucket)) if subject::is_token(bucket) => {
                Ok(DirectorySource::NatsKv(bucket.to_owned()))
            }
            _ => Err(format!(
                "CUSTOMER_DIRECTORY must be file:PATH or nats-kv:BUCKET, got {value:?}"
            )),
        }
    }
}

/// The resolver: answers pre-events from the customer directory and sets Frontline's
/// participant attributes.
#[derive(Debug, Clone, Parser)]
#[command(name = "resolver", version, about)]
pub struct Config {
    /// Admin listener: /metrics, /livez, /readyz.
    #[arg(long, env = "RESOLVER_ADMIN_LISTEN", default_value = "127.0.0.1:9091")]
    pub admin_listen: SocketAddr,
    /// The customer directory: file:PATH or nats-kv:BUCKET.
    #[arg(
        long,
        env = "CUSTOMER_DIRECTORY",
        default_value = "file:deploy/customers.example.json"
    )]
    pub customer_directory: DirectorySource,
    /// First token of every subject.
    #[arg(long, env = "SUBJECT_PREFIX", default_value = subject::DEFAULT_PREFIX)]
    pub subject_prefix: String,
    /// The post-event stream the participant consumer reads.
    #[arg(long, env = "STREAM_NAME", default_value = subject::DEFAULT_STREAM)]
    pub stream_name: String,
    /// Replicas of the dead-letter stream (3 on a cluster).
    #[arg(long, env = "STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Attempts at an onParticipantAdded update before it is dead-lettered.
    #[arg(long, env = "MAX_DELIVER", default_value_t = 10)]
    pub max_deliver: i64,
    /// Seconds a delivery may stay unacknowledged before another replica gets it.
    #[arg(long, env = "ACK_WAIT_SECS", default_value_t = 30)]
    pub ack_wait_secs: u64,
    /// onParticipantAdded events handled at once by this replica.
    #[arg(long, env = "CONSUMER_CONCURRENCY", default_value_t = 32)]
    pub consumer_concurrency: usize,
    /// Twilio account SID (REST calls).
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,
    /// Twilio auth token(s); the first one authenticates REST calls.
    #[arg(
        long = "twilio-auth-token",
        env = "TWILIO_AUTH_TOKEN",
        hide_env_values = true
    )]
    pub twilio_auth_tokens: Option<Tokens>,
    /// Twilio API key SID (instead of the auth token).
    #[arg(long, env = "TWILIO_API_KEY")]
    pub twilio_api_key: Option<String>,
    /// Twilio API key secret.
    #[arg(long, env = "TWILIO_API_SECRET", hide_env_values = true)]
    pub twilio_api_secret: Option<Secret>,
    /// Base URL of the Conversations REST API.
    #[arg(
        long,
        env = "TWILIO_API_BASE",
        default_value = "https://conversations.twilio.com"
    )]
    pub twilio_api_base: String,
    /// Extra CA certificates (PEM) trusted for the Twilio REST API, beside the webpki roots
    /// (an egress proxy that re-signs TLS).
    #[arg(long, env = "TWILIO_CA_FILE")]
    pub twilio_ca_file: Option<PathBuf>,
    /// Timeout of one Twilio REST request, in milliseconds.
    #[arg(long, env = "TWILIO_TIMEOUT_MS", default_value_t = 10_000)]
    pub twilio_timeout_ms: u64,
    /// The number to write from per channel type, for Frontline's outgoing conversations, e.g.
    /// `sms=+18005550100,whatsapp=whatsapp:+18005550100`.
    #[arg(long, env = "PROXY_ADDRESSES", default_value = "")]
    pub proxy_addresses: ProxyAddresses,
    /// Message templates for Frontline: file:PATH (a JSON array of categories).
    #[arg(
        long,
        env = "TEMPLATES",
        default_value = "file:deploy/templates.example.json"
    )]
    pub templates: TemplatesSource,
    /// The worker a routed conversation gets when its customer has none (unset: such
    /// conversations are left unrouted).
    #[arg(long, env = "ROUTING_FALLBACK_WORKER")]
    pub routing_fallback_worker: Option<String>,
    /// The origin Twilio calls (as the ingress's PUBLIC_URL): for twilio-setup and doctor.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Time to finish the work already received after SIGTERM/SIGINT, in seconds.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 25)]
    pub shutdown_grace_secs: u64,
    /// Logging and trace export.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// A one-off command instead of running the resolver.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One-off commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Manage the customer directory.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Show Twilio's Conversations webhook configuration beside what it should be; change it
    /// with --apply. Prints the Frontline callback URLs too.
    TwilioSetup {
        /// A Conversations service (IS...) instead of the global configuration.
        #[arg(long)]
        service: Option<String>,
        /// More events to send, beside onConversationAdd and onParticipantAdded.
        #[arg(long = "filter")]
        filters: Vec<String>,
        /// The method Twilio calls with.
        #[arg(long, default_value = "POST", value_parser = ["POST", "GET", "post", "get"])]
        method: String,
        /// Change Twilio's configuration (only what differs).
        #[arg(long)]
        apply: bool,
    },
    /// Check everything the pipeline needs, with a hint for each failure.
    Doctor {
        /// One JSON object per check, for scripts.
        #[arg(long)]
        json: bool,
        /// Skip the signed test request to PUBLIC_URL.
        #[arg(long)]
        skip_public: bool,
    },
    /// Dead letters (FRONTLINE_DLQ).
    #[command(subcommand)]
    Dlq(DlqCommand),
}

/// Dead-letter commands.
#[derive(Debug, Clone, Subcommand)]
pub enum DlqCommand {
    /// List dead letters: sequence, time, original subject, reason.
    List {
        /// At most this many (the oldest first).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Handle dead letters again with the consumer's own code; each one that succeeds is
    /// deleted from the DLQ, the others stay.
    Retry {
        /// Sequences to retry.
        sequences: Vec<u64>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "sequences")]
        all: bool,
    },
    /// Delete every dead letter.
    Purge,
}

/// Customer directory commands.
#[derive(Debug, Clone, Subcommand)]
pub enum DirectoryCommand {
    /// Load a JSON array of customer records into a NATS KV bucket (one key per customer_id).
    Import {
        /// The JSON file.
        file: PathBuf,
        /// The bucket.
        #[arg(long)]
        bucket: String,
    },
}

impl Config {
    /// The subjects of this deployment.
    ///
    /// # Errors
    /// When `SUBJECT_PREFIX` is not a valid token.
    pub fn subjects(&self) -> Result<Subjects, String> {
        Subjects::new(&self.subject_prefix)
    }

    /// The REST credentials: an API key and secret when both are set, else the account SID and
    /// the first auth token; `None` when neither is complete (participant updates are then off).
    pub fn twilio_credentials(&self) -> Option<Credentials> {
        if let (Some(key), Some(secret)) = (&self.twilio_api_key, &self.twilio_api_secret) {
            return Some(Credentials {
                username: key.clone(),
                password: secret.clone(),
            });
        }
        let sid = self.twilio_account_sid.as_ref()?;
        let token = self.twilio_auth_tokens.as_ref()?.for_rest(sid)?;
        Some(Credentials {
            username: sid.clone(),
            password: token.clone(),
        })
    }

    /// `ACK_WAIT_SECS`.
    pub fn ack_wait(&self) -> Duration {
        Duration::from_secs(self.ack_wait_secs.max(1))
    }

    /// Defaults, with `nats_url` and a directory file: for tests and embedding.
    pub fn for_test(nats_url: &str, directory: PathBuf) -> Config {
        let mut config = Config::parse_from(["resolver"]);
        config.nats = NatsArgs::plain(nats_url);
        config.customer_directory = DirectorySource::File(directory);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directory_sources() {
        assert_eq!(
            "file:deploy/c.json".parse::<DirectorySource>().unwrap(),
            DirectorySource::File("deploy/c.json".into())
        );
        assert_eq!(
            "nats-kv:customers".parse::<DirectorySource>().unwrap(),
            DirectorySource::NatsKv("customers".into())
        );
        for bad in ["file:", "deploy/c.json", "nats-kv:", "nats-kv:a.b", "s3:x"] {
            assert!(bad.parse::<DirectorySource>().is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_prefer_an_api_key() {
        let mut config = Config::parse_from(["resolver"]);
        config.twilio_account_sid = None;
        config.twilio_api_key = None;
        config.twilio_api_secret = None;
        config.twilio_auth_tokens = Some("tok1,tok2".parse().unwrap());
        assert!(config.twilio_credentials().is_none());
        config.twilio_account_sid = Some("AC1".into());
        let credentials = config.twilio_credentials().unwrap();
        assert_eq!(
            (credentials.username.as_str(), credentials.password.expose()),
            ("AC1", "tok1")
        );
        config.twilio_api_key = Some("SK1".into());
        config.twilio_api_secret = Some(Secret::new("shh"));
        let credentials = config.twilio_credentials().unwrap();
        assert_eq!(
            (credentials.username.as_str(), credentials.password.expose()),
            ("SK1", "shh")
        );
    }

    #[test]
    fn parses_the_import_subcommand() {
        let config = Config::parse_from([
            "resolver",
            "directory",
            "import",
            "c.json",
            "--bucket",
            "customers",
        ]);
        match config.command {
            Some(Command::Directory(DirectoryCommand::Import { file, bucket })) => {
                assert_eq!(
                    (file, bucket.as_str()),
                    (PathBuf::from("c.json"), "customers")
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
