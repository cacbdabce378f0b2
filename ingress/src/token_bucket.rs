//! Auth tokens per account from a NATS KV bucket (`TWILIO_AUTH_TOKEN_BUCKET`), for platforms
//! with many subaccounts: key = `AccountSid`, value = that account's token(s), comma-separated.
//! The bucket is loaded at start and watched, so a put or a delete takes effect within moments,
//! without a restart; a request costs one hash lookup, however many accounts. Until the bucket
//! has been read once, the ingress reports not ready.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use frontline_runtime::secret::Secret;
use futures::{StreamExt, TryStreamExt};

/// The tokens of the bucket, shared by every request.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    name: String,
    tokens: Arc<RwLock<HashMap<String, Arc<[Secret]>>>>,
    loaded: Arc<AtomicBool>,
}

impl TokenBucket {
    /// An empty bucket `name`, not yet loaded.
    pub fn new(name: impl Into<String>) -> TokenBucket {
        TokenBucket {
            name: name.into(),
            tokens: Arc::default(),
            loaded: Arc::default(),
        }
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tokens of `account_sid`, if the bucket has any.
    pub fn tokens(&self, account_sid: &str) -> Option<Arc<[Secret]>> {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(account_sid)
            .cloned()
    }

    /// Whether the bucket has been read once.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Keeps the tokens up to date for as long as it runs: opens the bucket (retrying until
    /// NATS allows it), loads it, then applies every change; starts over when the watch ends.
    pub async fn maintain(self, jetstream: jetstream::Context) {
        loop {
            match self.load_and_watch(&jetstream).await {
                Ok(()) => {
                    tracing::warn!(bucket = %self.name, "token bucket watch ended; reloading")
                }
                Err(err) => {
                    tracing::warn!(bucket = %self.name, cause = %err, "cannot read the token bucket; retrying")
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn load_and_watch(
        &self,
        jetstream: &jetstream::Context,
    ) -> Result<(), async_nats::Error> {
        let store = frontline_runtime::nats::open_kv_bucket(
            jetstream,
            &self.name,
            Duration::ZERO,
            jetstream::stream::StorageType::File,
        )
        .await?;
        // The watch starts before the load, so no change in between is missed.
        let mut watch = store.watch_all().await?;
        let keys: Vec<String> = store.keys().await?.try_collect().await?;
        for key in &keys {
            if let Some(value) = store.get(key).await? {
                self.apply(key, kv::Operation::Put, &value);
            }
        }
        if !self.loaded() {
            self.mark_loaded(keys.len());
        }
        while let Some(entry) = watch.next().await {
            let entry = entry?;
            self.apply(&entry.key, entry.operation, &entry.value);
        }
        Ok(())
    }

    fn mark_loaded(&self, accounts: usize) {
        self.loaded.store(true, Ordering::Release);
        tracing::info!(bucket = %self.name, entries = accounts, "token bucket loaded");
    }

    fn apply(&self, account: &str, operation: kv::Operation, value: &[u8]) {
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        match operation {
            kv::Operation::Put => {
                let parsed: Arc<[Secret]> = String::from_utf8_lossy(value)
                    .split(',')
                    .map(str::trim)
                    .filter(|token| !token.is_empty())
                    .map(Secret::new)
                    .collect();
                if parsed.is_empty() {
                    tokens.remove(account);
                } else {
                    tokens.insert(account.to_owned(), parsed);
                }
            }
            kv::Operation::Delete | kv::Operation::Purge => {
                tokens.remove(account);
            }
        }
        tracing::info!(bucket = %self.name, account = %frontline_runtime::telemetry::cut(account), ?operation, "token bucket changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_and_deletes_change_an_account_s_tokens() {
        let bucket = TokenBucket::new("tokens");
        assert!(bucket.tokens("AC1").is_none());
        bucket.apply("AC1", kv::Operation::Put, b"one, two ,");
        let tokens: Vec<String> = bucket
            .tokens("AC1")
            .unwrap()
            .iter()
            .map(|t| t.expose().to_owned())
            .collect();
        assert_eq!(tokens, ["one", "two"]);
        bucket.apply("AC1", kv::Operation::Delete, b"");
        assert!(bucket.tokens("AC1").is_none());
        bucket.apply("AC2", kv::Operation::Put, b" , ");
        assert!(bucket.tokens("AC2").is_none());
    }
}
