//! The pre-event answer cache. Twilio may retry a pre-event (`RetryCount` above 0, with an
//! idempotency token); the retry gets the answer already given, by whichever ingress replica gave
//! it, without asking the resolvers again. Answers are keyed by the digest of the signed
//! parameters (the `Nats-Msg-Id` of a post-event), so one request's answer is never served to
//! another. Answers live in a KV bucket in the NATS server's memory, shared by every
//! replica, bounded by age (`PRE_EVENT_CACHE_TTL_SECS`) and size (`PRE_EVENT_CACHE_MAX_BYTES`,
//! oldest first out). It is only an optimisation: a lookup that fails or is slow is a miss, a
//! write is not acknowledged, and only a resolver's decision is ever stored.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::Client;
use async_nats::connection::State;
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use frontline_runtime::nats::kv_stream_config;
use http::StatusCode;

/// The cache's settings.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// The bucket.
    pub bucket: String,
    /// How long an answer is kept.
    pub ttl: Duration,
    /// The bucket's size limit; the oldest answers go first.
    pub max_bytes: i64,
}

/// How long a lookup may take before the request goes on without it.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(250);

/// The cache as the broker holds it: empty until [`AnswerCache::open`] succeeds, and until then
/// answers are neither looked up nor stored.
#[derive(Debug, Clone)]
pub struct AnswerCache {
    client: Client,
    store: Arc<OnceLock<kv::Store>>,
}

impl AnswerCache {
    /// A cache over `client`, not yet open.
    pub fn new(client: Client) -> AnswerCache {
        AnswerCache {
            client,
            store: Arc::default(),
        }
    }

    /// Opens the bucket, retrying every second until NATS allows it.
    pub async fn open(&self, jetstream: &jetstream::Context, settings: CacheSettings) {
        let mut warned = false;
        loop {
            match open_bucket(jetstream, &settings).await {
                Ok(store) => {
                    tracing::info!(bucket = %settings.bucket, ttl_secs = settings.ttl.as_secs(), "pre-event answer cache ready");
                    let _ = self.store.set(store);
                    return;
                }
                Err(err) => {
                    // Said once when NATS is up and still refuses (resources, permissions).
                    if self.connected() && !warned {
                        warned = true;
                        tracing::warn!(bucket = %settings.bucket, cause = %err, "cannot open the pre-event answer cache; retrying");
                    } else {
                        tracing::debug!(bucket = %settings.bucket, cause = %err, "answer cache not ready; retrying");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The answer stored under `key`, if any; a failed or slow lookup is a miss.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let store = self.store.get()?;
        if !self.connected() {
            return None;
        }
        match tokio::time::timeout(LOOKUP_TIMEOUT, store.get(key)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(err)) => {
                tracing::debug!(cause = %err, "answer cache lookup failed");
                None
            }
            Err(_) => None,
        }
    }

    /// Stores `answer` under `key`: a plain publish to the bucket's subject, stored by
    /// JetStream without the request waiting for (or paying a round trip for) the
    /// acknowledgement. Best effort by design.
    pub async fn put(&self, key: String, answer: Bytes) {
        let Some(store) = self.store.get() else {
            return;
        };
        let subject = format!("$KV.{}.{key}", store.name);
        if let Err(err) = self.client.publish(subject, answer).await {
            tracing::debug!(cause = %err, "storing an answer in the cache failed");
        }
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }
}

/// Opens the bucket in memory (answers live for minutes and are only an optimisation, so they
/// need no disk write on the pre-event path), creating it or bringing its limits up to date:
/// past `max_bytes` the oldest answers are dropped, so the cache can never take more than that
/// of the server's memory however fast it is written.
async fn open_bucket(
    jetstream: &jetstream::Context,
    settings: &CacheSettings,
) -> Result<kv::Store, async_nats::Error> {
    let config = stream::Config {
        max_bytes: settings.max_bytes,
        discard: stream::DiscardPolicy::Old,
        ..kv_stream_config(&settings.bucket, settings.ttl, stream::StorageType::Memory)
    };
    jetstream.create_or_update_stream(config).await?;
    Ok(jetstream.get_key_value(&settings.bucket).await?)
}

/// An answer as the cache holds it: the status, a space, the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAnswer {
    /// 200 or 403.
    pub status: StatusCode,
    /// The JSON body of a 200, empty otherwise.
    pub body: Bytes,
}

impl CachedAnswer {
    /// The stored form.
    pub fn encode(&self) -> Bytes {
        let status = self.status.as_str().as_bytes();
        let mut encoded = Vec::with_capacity(status.len() + 1 + self.body.len());
        encoded.extend_from_slice(status);
        encoded.push(b' ');
        encoded.extend_from_slice(&self.body);
        Bytes::from(encoded)
    }

    /// Reads a stored answer back; `None` for anything this version did not write.
    pub fn decode(encoded: &[u8]) -> Option<CachedAnswer> {
        let space = encoded.iter().position(|b| *b == b' ')?;
        let status = StatusCode::from_bytes(&encoded[..space]).ok()?;
        if status != StatusCode::OK && status != StatusCode::FORBIDDEN {
            return None;
        }
        Some(CachedAnswer {
            status,
            body: Bytes::copy_from_slice(&encoded[space + 1..]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_back_as_stored() {
        for answer in [
            CachedAnswer {
                status: StatusCode::OK,
                body: Bytes::from_static(br#"{"friendly_name":"Bobby"}"#),
            },
            CachedAnswer {
                status: StatusCode::FORBIDDEN,
                body: Bytes::new(),
            },
        ] {
            assert_eq!(CachedAnswer::decode(&answer.encode()), Some(answer));
        }
        for junk in [&b""[..], b"200", b"503 ", b"abc {}"] {
            assert_eq!(CachedAnswer::decode(junk), None, "{junk:?}");
        }
    }
}
