//! The optional local spool (`SPOOL_DIR`): when NATS stays down longer than
//! `PUBLISH_BUDGET_MS`, a post-event (or routing callback) is appended to a write-ahead file,
//! fsync'd, and answered 200; a forwarder publishes the spool to JetStream in order when NATS is
//! back, with the same `Nats-Msg-Id`, so a replay after a crash stores nothing twice. The spool
//! survives the ingress's own restart and a SIGKILL (a record cut short by the kill was never
//! acknowledged, and is dropped when the spool is opened). Past `SPOOL_MAX_BYTES` of records not
//! yet forwarded, post-events get 503 again.
//!
//! The trade: a spooled event sits on this one machine's disk until it is forwarded; lose the
//! disk and it is lost, although Twilio was told 200.
//!
//! Layout: `spool.log`, records of `[u32 length][u64 appended at, Unix ms][u32 subject
//! length][subject][u32 headers length][headers, "name: value\n" lines][payload]`, and
//! `spool.offset`, the byte offset of the first record not yet forwarded (replaced atomically).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::broker::Broker;
use crate::metrics::IngressMetrics;

/// Why an event could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// `SPOOL_MAX_BYTES` of records wait already.
    #[error("the spool is full")]
    Full,
    /// The disk refused.
    #[error("spool I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// One spooled event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When it was appended (Unix ms).
    pub appended_ms: u64,
    /// Its subject.
    pub subject: String,
    /// Its headers (with `Nats-Msg-Id`).
    pub headers: Vec<(String, String)>,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let headers: String = self
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\n"))
            .collect();
        let body_len = 8 + 4 + self.subject.len() + 4 + headers.len() + self.payload.len();
        let mut out = Vec::with_capacity(4 + body_len);
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        out.extend_from_slice(&self.appended_ms.to_le_bytes());
        out.extend_from_slice(&(self.subject.len() as u32).to_le_bytes());
        out.extend_from_slice(self.subject.as_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
        out.extend_from_slice(headers.as_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes the record at the start of `data`; `None` when `data` holds less than a whole
    /// one (a write cut short).
    fn decode(data: &[u8]) -> Option<(Record, usize)> {
        let take_u32 = |at: usize| -> Option<usize> {
            Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize)
        };
        let len = take_u32(0)?;
        let body = data.get(4..4 + len)?;
        let appended_ms = u64::from_le_bytes(body.get(0..8)?.try_into().ok()?);
        let subject_len = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?) as usize;
        let subject = std::str::from_utf8(body.get(12..12 + subject_len)?)
            .ok()?
            .to_owned();
        let at = 12 + subject_len;
        let headers_len = u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
        let headers_text = std::str::from_utf8(body.get(at + 4..at + 4 + headers_len)?).ok()?;
        let headers = headers_text
            .lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let payload = body.get(at + 4 + headers_len..)?.to_vec();
        Some((
            Record {
                appended_ms,
                subject,
                headers,
                payload,
            },
            4 + len,
        ))
    }
}

#[derive(Debug)]
struct Files {
    log: File,
    /// Bytes in the log (all whole records).
    len: u64,
    /// Offset of the first record not yet forwarded.
    forwarded: u64,
    /// Records not yet forwarded, and the oldest one's time.
    pending: u64,
    oldest_ms: Option<u64>,
}

/// The spool of one ingress.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    files: Arc<Mutex<Files>>,
    metrics: IngressMetrics,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, dropping a last record cut short by a crash.
    ///
    /// # Errors
    /// When the directory or its files cannot be used.
    pub fn open(dir: &Path, max_bytes: u64, metrics: IngressMetrics) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir)?;
        let mut log = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(dir.join("spool.log"))?;
        let mut data = Vec::new();
        log.seek(SeekFrom::Start(0))?;
        log.read_to_end(&mut data)?;
        let forwarded = std::fs::read_to_string(dir.join("spool.offset"))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(0)
            .min(data.len() as u64);
        let (mut at, mut pending, mut oldest_ms) = (0usize, 0, None);
        while let Some((record, used)) = Record::decode(&data[at..]) {
            if at as u64 >= forwarded {
                pending += 1;
                oldest_ms.get_or_insert(record.appended_ms);
            }
            at += used;
        }
        if at < data.len() {
            tracing::warn!(
                bytes = data.len() - at,
                "dropping a spool record cut short by a crash"
            );
            log.set_len(at as u64)?;
            log.sync_all()?;
        }
        let spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            files: Arc::new(Mutex::new(Files {
                log,
                len: at as u64,
                forwarded,
                pending,
                oldest_ms,
            })),
            metrics,
        };
        spool.report();
        if pending > 0 {
            tracing::warn!(records = pending, "the spool holds events to forward");
        }
        Ok(spool)
    }

    fn files(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn report(&self) {
        let files = self.files();
        self.metrics.spool_depth.set(files.pending as i64);
        self.metrics
            .spool_bytes
            .set((files.len - files.forwarded) as i64);
        let age = files
            .oldest_ms
            .map_or(0, |oldest| now_ms().saturating_sub(oldest) / 1000);
        self.metrics.spool_oldest_age_seconds.set(age as i64);
    }

    /// Appends one event and fsyncs it: once this returns, the event survives a crash.
    ///
    /// # Errors
    /// [`SpoolError::Full`] past `SPOOL_MAX_BYTES`, or the disk's error.
    pub async fn append(
        &self,
        subject: &str,
        headers: &HeaderMap,
        payload: &Bytes,
    ) -> Result<(), SpoolError> {
        let record = Record {
            appended_ms: now_ms(),
            subject: subject.to_owned(),
            headers: headers
                .iter()
                .flat_map(|(name, values)| {
                    values
                        .iter()
                        .map(move |value| (name.to_string(), value.as_str().to_owned()))
                })
                .collect(),
            payload: payload.to_vec(),
        };
        let spool = self.clone();
        tokio::task::spawn_blocking(move || {
            let encoded = record.encode();
            let mut files = spool.files();
            if files.len - files.forwarded + encoded.len() as u64 > spool.max_bytes {
                return Err(SpoolError::Full);
            }
            files.log.write_all(&encoded)?;
            files.log.sync_data()?;
            files.len += encoded.len() as u64;
            files.pending += 1;
            files.oldest_ms.get_or_insert(record.appended_ms);
            drop(files);
            spool.report();
            Ok(())
        })
        .await
        .map_err(|err| SpoolError::Io(std::io::Error::other(err)))?
    }

    /// The first record not yet forwarded, and where the next one starts.
    fn next(&self) -> Result<Option<(Record, u64)>, SpoolError> {
        let files = self.files();
        if files.forwarded >= files.len {
            return Ok(None);
        }
        let mut file = File::open(self.dir.join("spool.log"))?;
        file.seek(SeekFrom::Start(files.forwarded))?;
        // Only the one record: its length first, then the rest of it.
        let mut data = vec![0u8; 4];
        file.read_exact(&mut data)?;
        let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        data.resize(4 + len, 0);
        file.read_exact(&mut data[4..])?;
        Ok(Record::decode(&data).map(|(record, used)| (record, files.forwarded + used as u64)))
    }

    /// Marks everything before `offset` forwarded (durably), and empties the spool once all is.
    fn forwarded(&self, offset: u64, next_oldest: Option<u64>) -> Result<(), SpoolError> {
        let mut files = self.files();
        files.forwarded = offset;
        files.pending = files.pending.saturating_sub(1);
        files.oldest_ms = next_oldest;
        if files.forwarded >= files.len {
            files.log.set_len(0)?;
            files.log.sync_all()?;
            files.len = 0;
            files.forwarded = 0;
            files.oldest_ms = None;
        }
        let temporary = self.dir.join("spool.offset.tmp");
        let mut offset_file = File::create(&temporary)?;
        offset_file.write_all(files.forwarded.to_string().as_bytes())?;
        offset_file.sync_all()?;
        std::fs::rename(&temporary, self.dir.join("spool.offset"))?;
        drop(files);
        self.report();
        Ok(())
    }

    /// Forwards the spool to JetStream, in order, for as long as it runs.
    pub async fn forward<B: Broker>(self, broker: Arc<B>) {
        loop {
            let next = {
                let spool = self.clone();
                tokio::task::spawn_blocking(move || spool.next()).await
            };
            let (record, end) = match next {
                Ok(Ok(Some(next))) => next,
                Ok(Ok(None)) => {
                    self.report();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Ok(Err(err)) => {
                    tracing::error!(cause = %err, "reading the spool failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(_) => return,
            };
            let headers = || {
                let mut headers = HeaderMap::new();
                for (name, value) in &record.headers {
                    headers.append(name.as_str(), value.as_str());
                }
                headers
            };
            let published = broker
                .publish(
                    record.subject.clone(),
                    &headers,
                    Bytes::from(record.payload.clone()),
                )
                .await;
            if let Err(err) = published {
                tracing::debug!(cause = %err, "forwarding the spool failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            let spool = self.clone();
            let after = tokio::task::spawn_blocking(move || {
                let following = spool.next_after(end);
                spool.forwarded(end, following)
            })
            .await;
            if let Ok(Err(err)) = after {
                tracing::error!(cause = %err, "recording the spool's progress failed");
            }
            self.metrics.spool_forwarded.inc();
        }
    }

    /// The time of the record starting at `offset`, if there is one.
    fn next_after(&self, offset: u64) -> Option<u64> {
        let files = self.files();
        if offset >= files.len {
            return None;
        }
        let mut file = File::open(self.dir.join("spool.log")).ok()?;
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut head = [0u8; 12];
        file.read_exact(&mut head).ok()?;
        Some(u64::from_le_bytes(head[4..12].try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_cut_one_is_not_read() {
        let record = Record {
            appended_ms: 1_764_412_800_123,
            subject: "frontline.post.onMessageAdded.CH1".into(),
            headers: vec![
                ("Nats-Msg-Id".into(), "abc".into()),
                ("Twilio-Event-Type".into(), "onMessageAdded".into()),
            ],
            payload: b"{\"event_type\":\"onMessageAdded\"}".to_vec(),
        };
        let encoded = record.encode();
        assert_eq!(Record::decode(&encoded), Some((record, encoded.len())));
        for cut in [0, 3, 10, encoded.len() - 1] {
            assert_eq!(Record::decode(&encoded[..cut]), None, "{cut}");
        }
    }
}
