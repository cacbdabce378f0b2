//! The customer directory in a NATS KV bucket (`CUSTOMER_DIRECTORY=nats-kv:BUCKET`): one key per
//! `customer_id`, the value the customer's JSON record. The resolver loads the bucket at start
//! and watches it, so a change is served without a restart; `resolver directory import` loads a
//! JSON file into the bucket.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use frontline_shared::Customer;
use futures::{FutureExt, StreamExt, TryStreamExt};

use frontline_runtime::nats::NatsArgs;

use crate::directory::{Directory, DirectoryError, DirectoryHandle};

/// Why the KV directory failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// A JetStream or KV call failed.
    #[error("NATS KV: {0}")]
    Nats(#[from] async_nats::Error),
    /// The import file is unusable.
    #[error(transparent)]
    File(#[from] DirectoryError),
    /// The NATS settings are unusable.
    #[error("NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    /// A `customer_id` that cannot be a KV key.
    #[error("customer_id {0:?} cannot be a KV key (letters, digits, - _ = / . only)")]
    BadKey(String),
}

/// Opens `bucket`, creating it when missing (no expiry).
///
/// # Errors
/// When JetStream refuses.
pub async fn open_bucket(
    jetstream: &jetstream::Context,
    bucket: &str,
) -> Result<kv::Store, KvError> {
    Ok(frontline_runtime::nats::open_kv_bucket(
        jetstream,
        bucket,
        Duration::ZERO,
        jetstream::stream::StorageType::File,
    )
    .await?)
}

/// Puts every record of a JSON file into `bucket` under its `customer_id`; returns how many.
///
/// # Errors
/// When the file is unusable, a `customer_id` is not a valid key, or NATS refuses.
pub async fn import(
    jetstream: &jetstream::Context,
    bucket: &str,
    file: &Path,
) -> Result<usize, KvError> {
    let customers = crate::directory::read_customers(file)?;
    if let Some(bad) = customers.iter().find(|c| !valid_key(&c.customer_id)) {
        return Err(KvError::BadKey(bad.customer_id.clone()));
    }
    let store = open_bucket(jetstream, bucket).await?;
    for customer in &customers {
        let value = serde_json::to_vec(customer).expect("a customer always serialises");
        store
            .put(&customer.customer_id, value.into())
            .await
            .map_err(async_nats::Error::from)?;
    }
    Ok(customers.len())
}

/// `resolver directory import FILE --bucket NAME`: connects with `nats` and loads the file into
/// the bucket; returns how many customers.
///
/// # Errors
/// When the file, the NATS settings or NATS refuse.
pub async fn import_file(nats: &NatsArgs, bucket: &str, file: &Path) -> Result<usize, KvError> {
    let (client, _) = nats.connect("frontline-directory-import").await?;
    let jetstream = jetstream::new(client.clone());
    let count = import(&jetstream, bucket, file).await?;
    let _ = client.flush().await;
    Ok(count)
}

/// Loads the bucket into `handle` and returns a future that keeps it up to date (run it in a
/// task). The watch starts before the load, so no change in between is missed.
///
/// # Errors
/// When the bucket cannot be read.
pub async fn load_and_watch(
    store: kv::Store,
    handle: DirectoryHandle,
) -> Result<impl std::future::Future<Output = ()>, KvError> {
    let mut watch = store.watch_all().await.map_err(async_nats::Error::from)?;
    let mut records: HashMap<String, Customer> = HashMap::new();
    let keys: Vec<String> = store
        .keys()
        .await
        .map_err(async_nats::Error::from)?
        .try_collect()
        .await
        .map_err(async_nats::Error::from)?;
    for key in keys {
        if let Some(value) = store.get(&key).await.map_err(async_nats::Error::from)? {
            apply(&mut records, &key, kv::Operation::Put, &value);
        }
    }
    handle.replace(directory_of(&records));
    tracing::info!(bucket = %store.name, customers = records.len(), "customer directory loaded from NATS KV");
    Ok(async move {
        while let Some(entry) = watch.next().await {
            let mut changed = 0;
            let mut next = Some(entry);
            // Apply every change already waiting, then rebuild the index once.
            while let Some(entry) = next.take() {
                match entry {
                    Ok(entry) => {
                        apply(&mut records, &entry.key, entry.operation, &entry.value);
                        changed += 1;
                    }
                    Err(err) => tracing::warn!(cause = %err, "directory watch error"),
                }
                next = watch.next().now_or_never().flatten();
            }
            handle.replace(directory_of(&records));
            tracing::info!(
                changes = changed,
                customers = records.len(),
                "customer directory updated"
            );
        }
        tracing::warn!("directory watch ended");
    })
}

/// The directory of the bucket's records, in a fixed order whatever the map's: by `customer_id`
/// (numerically when both are numbers), so when two customers share an address the smallest
/// `customer_id` wins, on every replica and after every restart.
fn directory_of(records: &HashMap<String, Customer>) -> Directory {
    let mut customers: Vec<&Customer> = records.values().collect();
    customers.sort_by(|a, b| customer_order(&a.customer_id, &b.customer_id));
    Directory::new(customers.into_iter().cloned())
}

fn customer_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

fn apply(
    records: &mut HashMap<String, Customer>,
    key: &str,
    operation: kv::Operation,
    value: &[u8],
) {
    match operation {
        kv::Operation::Put => match serde_json::from_slice::<Customer>(value) {
            Ok(customer) => {
                records.insert(key.to_owned(), customer);
            }
            Err(err) => {
                tracing::warn!(key, cause = %err, "ignoring a directory entry that is not a customer record")
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => {
            records.remove(key);
        }
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=/.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::CustomerDirectory;

    #[test]
    fn keys_are_validated() {
        for good in ["1001", "cust-7", "a_b=c/d.e"] {
            assert!(valid_key(good), "{good}");
        }
        for bad in ["", "a b", "a*", "a>", ".a", "a.", "ñ"] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn a_shared_address_goes_to_the_smallest_customer_id_whatever_the_order() {
        let record = |id: &str| -> Customer {
            serde_json::from_value(serde_json::json!({
                "customer_id": id, "display_name": format!("C{id}"),
                "channels": [{"type": "sms", "value": "+1555"}]
            }))
            .unwrap()
        };
        // A fresh map each time: its iteration order differs from one to the next.
        for _ in 0..50 {
            let records: HashMap<String, Customer> = ["9", "10", "100", "abc"]
                .into_iter()
                .map(|id| (id.to_owned(), record(id)))
                .collect();
            let winner = directory_of(&records).customer("+1555").unwrap();
            assert_eq!(winner.customer_id, "9");
        }
    }

    #[test]
    fn puts_and_deletes_apply() {
        let mut records = HashMap::new();
        let record = br#"{"customer_id":"1","display_name":"A","channels":[]}"#;
        apply(&mut records, "1", kv::Operation::Put, record);
        apply(&mut records, "2", kv::Operation::Put, b"not json");
        assert_eq!(records.len(), 1);
        apply(&mut records, "1", kv::Operation::Delete, b"");
        assert!(records.is_empty());
    }
}
