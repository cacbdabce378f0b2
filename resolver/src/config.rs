//! The resolver configuration: flags and environment variables (the names of SPEC.md), parsed
//! into real types and validated once at start.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use frontline_ingress::nats::NatsArgs;
use frontline_ingress::telemetry::LogFormat;
use frontline_shared::subject::{self, Subjects};

/// Where the customer directory comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectorySource {
    /// `file:PATH`: a JSON array of Frontline customer records.
    File(PathBuf),
}

impl std::str::FromStr for DirectorySource {
    type Err = String;

    fn from_str(value: &str) -> Result<DirectorySource, String> {
        match value.split_once(':') {
            Some(("file", path)) if !path.is_empty() => Ok(DirectorySource::File(path.into())),
            _ => Err(format!(
                "CUSTOMER_DIRECTORY must be file:PATH, got {value:?}"
            )),
        }
    }
}

/// The resolver: answers pre-events from the customer directory.
#[derive(Debug, Clone, Parser)]
#[command(name = "resolver", version, about)]
pub struct Config {
    /// Admin listener: /metrics, /livez, /readyz.
    #[arg(long, env = "RESOLVER_ADMIN_LISTEN", default_value = "127.0.0.1:9091")]
    pub admin_listen: SocketAddr,
    /// The customer directory: file:PATH.
    #[arg(
        long,
        env = "CUSTOMER_DIRECTORY",
        default_value = "file:deploy/customers.example.json"
    )]
    pub customer_directory: DirectorySource,
    /// First token of every subject.
    #[arg(long, env = "SUBJECT_PREFIX", default_value = subject::DEFAULT_PREFIX)]
    pub subject_prefix: String,
    /// Time to finish the requests already received after SIGTERM/SIGINT, in seconds.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 25)]
    pub shutdown_grace_secs: u64,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
}

impl Config {
    /// The subjects of this deployment.
    ///
    /// # Errors
    /// When `SUBJECT_PREFIX` is not a valid token.
    pub fn subjects(&self) -> Result<Subjects, String> {
        Subjects::new(&self.subject_prefix)
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
        assert!("file:".parse::<DirectorySource>().is_err());
        assert!("deploy/c.json".parse::<DirectorySource>().is_err());
    }
}
