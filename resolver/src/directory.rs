//! The customer directory: Frontline customer records indexed by channel address when loaded,
//! so a lookup is one hash probe, never a scan. An address matches a channel value exactly, or
//! with a `whatsapp:` / `messenger:` prefix stripped on either side. Its sources are a file
//! (`file:PATH`, a fixed [`Directory`]) and a NATS KV bucket ([`kv`], watched).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_nats::jetstream;
use frontline_shared::Customer;
use frontline_shared::customer::strip_channel_prefix;

use crate::config::DirectorySource;

pub mod kv;

/// Why a directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a JSON array of customer records.
    #[error("parsing {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// An immutable snapshot of the directory.
#[derive(Debug, Default)]
pub struct Directory {
    by_address: HashMap<String, Arc<Customer>>,
    by_id: HashMap<String, Arc<Customer>>,
    /// Every customer, in directory order (the CRM list's order).
    customers: Arc<[Arc<Customer>]>,
}

impl Directory {
    /// Indexes `customers` by every channel value, with and without its channel prefix. When two
    /// customers share an address the first one listed wins, and an exact match beats a
    /// prefix-stripped one.
    pub fn new(customers: impl IntoIterator<Item = Customer>) -> Directory {
        let customers: Vec<Arc<Customer>> = customers.into_iter().map(Arc::new).collect();
        let mut by_address = HashMap::new();
        for customer in &customers {
            for channel in &customer.channels {
                let kept = by_address
                    .entry(channel.value.clone())
                    .or_insert_with(|| customer.clone());
                if kept.customer_id != customer.customer_id {
                    tracing::warn!(
                        address = %frontline_runtime::telemetry::cut(&channel.value),
                        kept = %frontline_runtime::telemetry::cut(&kept.customer_id),
                        ignored = %frontline_runtime::telemetry::cut(&customer.customer_id),
                        "two customers share an address; the first one wins"
                    );
                }
            }
        }
        for customer in &customers {
            for channel in &customer.channels {
                let bare = strip_channel_prefix(&channel.value);
                by_address
                    .entry(bare.to_owned())
                    .or_insert_with(|| customer.clone());
            }
        }
        let mut by_id = HashMap::with_capacity(customers.len());
        for customer in &customers {
            by_id
                .entry(customer.customer_id.clone())
                .or_insert_with(|| customer.clone());
        }
        Directory {
            by_address,
            by_id,
            customers: customers.into(),
        }
    }

    /// Loads a JSON array of customer records.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn from_file(path: &Path) -> Result<Directory, DirectoryError> {
        Ok(Directory::new(read_customers(path)?))
    }

    /// How many customers.
    pub fn len(&self) -> usize {
        self.customers.len()
    }

    /// No customers at all.
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }
}

/// Whether a decision consulted the directory, and what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A known customer.
    Hit,
    /// No customer for the address.
    Miss,
}

/// The one interface to the customer directory, whatever its source: the pre-event rules and
/// the participant consumer see only this. A `file:` directory is a fixed [`Directory`]; a
/// `nats-kv:` directory is a [`DirectoryHandle`] whose snapshot a watcher replaces.
pub trait CustomerDirectory: Send + Sync + std::fmt::Debug {
    /// The customer writing from `address`, if any.
    fn customer(&self, address: &str) -> Option<Arc<Customer>>;

    /// The customer with this `customer_id`, if any.
    fn by_id(&self, customer_id: &str) -> Option<Arc<Customer>>;

    /// Every customer, in directory order (cheap: shared, not copied).
    fn all(&self) -> Arc<[Arc<Customer>]>;
}

impl CustomerDirectory for Directory {
    fn customer(&self, address: &str) -> Option<Arc<Customer>> {
        self.by_address
            .get(address)
            .or_else(|| self.by_address.get(strip_channel_prefix(address)))
            .cloned()
    }

    fn by_id(&self, customer_id: &str) -> Option<Arc<Customer>> {
        self.by_id.get(customer_id).cloned()
    }

    fn all(&self) -> Arc<[Arc<Customer>]> {
        self.customers.clone()
    }
}

impl CustomerDirectory for DirectoryHandle {
    fn customer(&self, address: &str) -> Option<Arc<Customer>> {
        self.snapshot().customer(address)
    }

    fn by_id(&self, customer_id: &str) -> Option<Arc<Customer>> {
        self.snapshot().by_id(customer_id)
    }

    fn all(&self) -> Arc<[Arc<Customer>]> {
        self.snapshot().all()
    }
}

/// Reads a JSON array of customer records.
///
/// # Errors
/// When the file cannot be read or parsed.
pub fn read_customers(path: &Path) -> Result<Vec<Customer>, DirectoryError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| DirectoryError::Read {
        path: shown.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| DirectoryError::Parse {
        path: shown,
        source,
    })
}

/// The live directory: a snapshot that a watcher may replace while requests read it. Readers
/// take an `Arc` of the current snapshot (the lock is held only to clone it, never across an
/// await), so a swap never blocks a lookup for long.
#[derive(Debug, Clone, Default)]
pub struct DirectoryHandle(Arc<RwLock<Arc<Directory>>>);

impl DirectoryHandle {
    /// A handle serving `directory`.
    pub fn new(directory: Directory) -> DirectoryHandle {
        DirectoryHandle(Arc::new(RwLock::new(Arc::new(directory))))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Directory> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Serves `directory` from now on.
    pub fn replace(&self, directory: Directory) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(directory);
    }
}

/// The directory of `source`: a file, loaded once, or a KV bucket, retried until NATS allows
/// it and then watched, so changes are served without a restart.
///
/// # Errors
/// When the file cannot be read or parsed.
pub async fn load(
    source: &DirectorySource,
    jetstream: &jetstream::Context,
) -> Result<Arc<dyn CustomerDirectory>, DirectoryError> {
    let bucket = match source {
        DirectorySource::File(path) => {
            let directory = Directory::from_file(path)?;
            tracing::info!(customers = directory.len(), path = %path.display(), "customer directory loaded");
            return Ok(Arc::new(directory));
        }
        DirectorySource::NatsKv(bucket) => bucket,
    };
    let handle = DirectoryHandle::default();
    loop {
        let loaded = async {
            kv::load_and_watch(kv::open_bucket(jetstream, bucket).await?, handle.clone()).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_serves_its_latest_snapshot() {
        let handle = DirectoryHandle::default();
        assert!(handle.customer("+1").is_none());
        handle.replace(Directory::new([customer("9", &["+1"])]));
        assert_eq!(handle.customer("+1").unwrap().customer_id, "9");
    }

    fn customer(id: &str, channels: &[&str]) -> Customer {
        serde_json::from_value(serde_json::json!({
            "customer_id": id,
            "display_name": format!("Customer {id}"),
            "channels": channels.iter().map(|v| serde_json::json!({"type": "sms", "value": v})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn matches_exactly_or_without_a_channel_prefix_on_either_side() {
        let directory = Directory::new([
            customer("1", &["+15550001"]),
            customer("2", &["whatsapp:+15550002"]),
            customer("3", &["messenger:4242"]),
        ]);
        let id = |address| directory.customer(address).map(|c| c.customer_id.clone());
        assert_eq!(id("+15550001").as_deref(), Some("1"));
        assert_eq!(id("whatsapp:+15550001").as_deref(), Some("1"));
        assert_eq!(id("whatsapp:+15550002").as_deref(), Some("2"));
        assert_eq!(id("+15550002").as_deref(), Some("2"));
        assert_eq!(id("messenger:4242").as_deref(), Some("3"));
        assert_eq!(id("4242").as_deref(), Some("3"));
        assert_eq!(id("+15550003"), None);
        assert_eq!(id("sms:+15550001"), None);
        assert_eq!(directory.len(), 3);
    }

    #[test]
    fn exact_matches_beat_stripped_ones_and_the_first_listed_wins() {
        let directory = Directory::new([
            customer("a", &["whatsapp:+1555"]),
            customer("b", &["+1555"]),
            customer("c", &["+1555"]),
        ]);
        assert_eq!(directory.customer("+1555").unwrap().customer_id, "b");
        assert_eq!(
            directory.customer("whatsapp:+1555").unwrap().customer_id,
            "a"
        );
    }

    #[test]
    fn loads_the_example_directory() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/customers.example.json");
        let directory = Directory::from_file(&path).unwrap();
        assert!(directory.len() >= 3);
        assert!(Directory::from_file(Path::new("/nonexistent.json")).is_err());
    }
}
