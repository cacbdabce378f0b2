//! The ingress's Prometheus metrics, registered on an explicit registry held in state. Every
//! labelled series is resolved once at start: the request path only indexes into tables, and the
//! `event_type` label takes the known names or `other`, so junk event types add no series.

use frontline_runtime::metrics::{LATENCY_BUCKETS, OTHER_EVENT, register_process_metrics};
use frontline_shared::EventType;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// How a webhook request ended: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Pre-event: a resolver accepted it.
    Accepted,
    /// Pre-event: a resolver modified it.
    Modified,
    /// Pre-event: a resolver rejected it.
    Rejected,
    /// Pre-event: no usable answer; `PRE_EVENT_FALLBACK` answered.
    Fallback,
    /// Post-event: stored.
    Published,
    /// Post-event: already stored (JetStream de-duplicated it).
    Duplicate,
    /// Missing or wrong signature.
    BadSignature,
    /// 400, 404, 405, 413, 415.
    BadRequest,
    /// Over `MAX_IN_FLIGHT`.
    Overloaded,
    /// Post-event: JetStream did not confirm it.
    PublishFailed,
    /// Callback: the resolvers' answer was relayed.
    Answered,
    /// Callback: no usable answer from the resolvers (503).
    Unavailable,
}

impl Outcome {
    /// Every webhook outcome, in label-table order (callbacks add [`Outcome::Answered`] and
    /// [`Outcome::Unavailable`], counted apart).
    pub const ALL: [Outcome; 10] = [
        Outcome::Accepted,
        Outcome::Modified,
        Outcome::Rejected,
        Outcome::Fallback,
        Outcome::Published,
        Outcome::Duplicate,
        Outcome::BadSignature,
        Outcome::BadRequest,
        Outcome::Overloaded,
        Outcome::PublishFailed,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Modified => "modified",
            Outcome::Rejected => "rejected",
            Outcome::Fallback => "fallback",
            Outcome::Published => "published",
            Outcome::Duplicate => "duplicate",
            Outcome::BadSignature => "bad_signature",
            Outcome::BadRequest => "bad_request",
            Outcome::Overloaded => "overloaded",
            Outcome::PublishFailed => "publish_failed",
            Outcome::Answered => "answered",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// Which path a request took: the `kind` label of the duration histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Asked of the resolvers.
    Pre,
    /// Stored in JetStream.
    Post,
    /// A Frontline callback.
    Callback,
}

/// Every ingress metric.
#[derive(Debug, Clone)]
pub struct IngressMetrics {
    registry: Registry,
    /// `[event label][outcome]`: `EventType as usize`, then `other` last.
    requests: Vec<[IntCounter; Outcome::ALL.len()]>,
    duration_pre: Histogram,
    duration_post: Histogram,
    duration_callback: Histogram,
    callbacks: IntCounterVec,
    /// Webhook requests being handled now.
    pub in_flight: IntGauge,
    /// Duration of NATS requests to the resolvers.
    pub nats_request_duration: Histogram,
    cache_hit: IntCounter,
    cache_miss: IntCounter,
    signature_failures: Vec<(&'static str, IntCounter)>,
    publish_attempts: IntCounter,
    publish_retries: IntCounter,
    publish_wait: Histogram,
    publish_refusals: IntCounterVec,
    /// Events in the spool not yet forwarded.
    pub spool_depth: IntGauge,
    /// Bytes in the spool not yet forwarded.
    pub spool_bytes: IntGauge,
    /// Age of the oldest event in the spool, in seconds.
    pub spool_oldest_age_seconds: IntGauge,
    /// Events put in the spool.
    pub spooled: IntCounter,
    /// Events forwarded from the spool to JetStream.
    pub spool_forwarded: IntCounter,
    /// Bytes stored in the post-event stream (read every few seconds).
    pub stream_bytes: IntGauge,
    /// `STREAM_MAX_BYTES`, for the alert at 80 %.
    pub stream_max_bytes: IntGauge,
}

impl IngressMetrics {
    /// Registers every metric (and the process metrics) on a new registry.
    ///
    /// # Errors
    /// Only on a duplicate registration, which would be a bug.
    pub fn new() -> Result<IngressMetrics, prometheus::Error> {
        let registry = Registry::new();
        let requests_vec = IntCounterVec::new(
            Opts::new(
                "frontline_ingress_requests_total",
                "Webhook requests by event type and outcome.",
            ),
            &["event_type", "outcome"],
        )?;
        let labels = EventType::ALL
            .iter()
            .map(|e| e.as_str())
            .chain([OTHER_EVENT]);
        let requests = labels
            .map(|event| {
                Outcome::ALL
                    .map(|outcome| requests_vec.with_label_values(&[event, outcome.as_str()]))
            })
            .collect();
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "frontline_ingress_request_duration_seconds",
                "Webhook request handling time by path (pre or post).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["kind"],
        )?;
        let in_flight = IntGauge::new(
            "frontline_ingress_in_flight_requests",
            "Webhook requests being handled.",
        )?;
        let nats_request_duration = Histogram::with_opts(
            HistogramOpts::new(
                "frontline_ingress_nats_request_duration_seconds",
                "NATS request/reply round trips to the resolvers.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(requests_vec))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(nats_request_duration.clone()))?;
        let cache = IntCounterVec::new(
            Opts::new(
                "frontline_ingress_pre_event_cache_total",
                "Pre-event answer cache lookups (retries with an idempotency token) by result.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(cache.clone()))?;
        let callbacks = IntCounterVec::new(
            Opts::new(
                "frontline_ingress_callbacks_total",
                "Frontline callbacks by route, Location and outcome.",
            ),
            &["route", "location", "outcome"],
        )?;
        registry.register(Box::new(callbacks.clone()))?;
        // The series an alert watches exist from the start, at zero.
        for route in frontline_shared::CallbackRoute::ALL {
            for location in route.locations() {
                for outcome in [Outcome::Answered, Outcome::Unavailable] {
                    callbacks.with_label_values(&[route.as_str(), location, outcome.as_str()]);
                }
            }
        }
        for outcome in [Outcome::Published, Outcome::PublishFailed] {
            callbacks.with_label_values(&[
                crate::callback::ROUTING,
                crate::callback::OTHER,
                outcome.as_str(),
            ]);
        }
        let failures = IntCounterVec::new(
            Opts::new(
                "frontline_ingress_signature_failures_total",
                "Requests refused for their signature, by reason.",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(failures.clone()))?;
        let signature_failures = crate::signature::SignatureError::REASONS
            .iter()
            .map(|reason| (*reason, failures.with_label_values(&[reason])))
            .collect();
        let publish_attempts = IntCounter::new(
            "frontline_ingress_publish_attempts_total",
            "JetStream publish tries (post-events and routing callbacks), retries included.",
        )?;
        let publish_retries = IntCounter::new(
            "frontline_ingress_publish_retries_total",
            "JetStream publish tries after the first, while a failure could pass.",
        )?;
        let publish_wait = Histogram::with_opts(
            HistogramOpts::new(
                "frontline_ingress_publish_wait_seconds",
                "Time from the first publish try to the PubAck or the refusal (PUBLISH_BUDGET_MS).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let publish_refusals = IntCounterVec::new(
            Opts::new(
                "frontline_ingress_publish_refusals_total",
                "Publishes given up (answered 503), by the last failure's cause.",
            ),
            &["cause"],
        )?;
        for cause in ["disconnected", "timed_out", "unavailable", "refused"] {
            publish_refusals.with_label_values(&[cause]);
        }
        registry.register(Box::new(publish_attempts.clone()))?;
        registry.register(Box::new(publish_retries.clone()))?;
        registry.register(Box::new(publish_wait.clone()))?;
        registry.register(Box::new(publish_refusals.clone()))?;
        let spool_depth = IntGauge::new(
            "frontline_ingress_spool_depth",
            "Events in the local spool not yet forwarded to JetStream (SPOOL_DIR).",
        )?;
        let spool_bytes = IntGauge::new(
            "frontline_ingress_spool_bytes",
            "Bytes in the local spool not yet forwarded (at most SPOOL_MAX_BYTES).",
        )?;
        let spool_oldest_age_seconds = IntGauge::new(
            "frontline_ingress_spool_oldest_age_seconds",
            "Age of the oldest event in the local spool.",
        )?;
        let spooled = IntCounter::new(
            "frontline_ingress_spooled_total",
            "Post-events answered 200 from the local spool, NATS being down past the budget.",
        )?;
        let spool_forwarded = IntCounter::new(
            "frontline_ingress_spool_forwarded_total",
            "Events forwarded from the local spool to JetStream.",
        )?;
        for gauge in [&spool_depth, &spool_bytes, &spool_oldest_age_seconds] {
            registry.register(Box::new(gauge.clone()))?;
        }
        registry.register(Box::new(spooled.clone()))?;
        registry.register(Box::new(spool_forwarded.clone()))?;
        let stream_bytes = IntGauge::new(
            "frontline_ingress_stream_bytes",
            "Bytes stored in the post-event stream.",
        )?;
        let stream_max_bytes = IntGauge::new(
            "frontline_ingress_stream_max_bytes",
            "The post-event stream's size limit (STREAM_MAX_BYTES); full, it refuses new events.",
        )?;
        registry.register(Box::new(stream_bytes.clone()))?;
        registry.register(Box::new(stream_max_bytes.clone()))?;
        register_process_metrics(&registry)?;
        Ok(IngressMetrics {
            spool_depth,
            spool_bytes,
            spool_oldest_age_seconds,
            spooled,
            spool_forwarded,
            signature_failures,
            publish_attempts,
            publish_retries,
            publish_wait,
            publish_refusals,
            stream_bytes,
            stream_max_bytes,
            registry,
            requests,
            duration_pre: duration.with_label_values(&["pre"]),
            duration_post: duration.with_label_values(&["post"]),
            duration_callback: duration.with_label_values(&["callback"]),
            callbacks,
            in_flight,
            nats_request_duration,
            cache_hit: cache.with_label_values(&["hit"]),
            cache_miss: cache.with_label_values(&["miss"]),
        })
    }

    /// The registry `/metrics` serves.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one finished request: a known event type under its name, anything else (or none)
    /// under `other`.
    pub fn count(&self, event_type: Option<EventType>, outcome: Outcome) {
        let row = event_type.map_or(EventType::ALL.len(), |e| e as usize);
        // `Outcome::ALL` lists the webhook outcomes in declaration order; a callback's outcome
        // has no series here (it is counted by `count_callback`).
        if let Some(counter) = self.requests[row].get(outcome as usize) {
            counter.inc();
        }
    }

    /// Counts one finished callback (`route` and `location` from fixed tables).
    pub fn count_callback(&self, route: &str, location: &str, outcome: Outcome) {
        self.callbacks
            .with_label_values(&[route, location, outcome.as_str()])
            .inc();
    }

    /// Counts one signature refusal by its reason (one of [`SignatureError::REASONS`]).
    ///
    /// [`SignatureError::REASONS`]: crate::signature::SignatureError::REASONS
    pub fn signature_failure(&self, reason: &str) {
        if let Some((_, counter)) = self.signature_failures.iter().find(|(r, _)| *r == reason) {
            counter.inc();
        }
    }

    /// Records one publish: its tries, the time they took, and its refusal if it was given up.
    pub fn publish_tried(
        &self,
        tries: u32,
        seconds: f64,
        refused: Option<&crate::broker::PublishError>,
    ) {
        self.publish_attempts.inc_by(u64::from(tries));
        self.publish_retries
            .inc_by(u64::from(tries.saturating_sub(1)));
        self.publish_wait.observe(seconds);
        if let Some(err) = refused {
            self.publish_refusals
                .with_label_values(&[err.cause()])
                .inc();
        }
    }

    /// Counts one answer cache lookup.
    pub fn cache_lookup(&self, hit: bool) {
        if hit {
            self.cache_hit.inc()
        } else {
            self.cache_miss.inc()
        }
    }

    /// Records one request's handling time.
    pub fn observe(&self, kind: PathKind, seconds: f64) {
        match kind {
            PathKind::Pre => self.duration_pre.observe(seconds),
            PathKind::Post => self.duration_post.observe(seconds),
            PathKind::Callback => self.duration_callback.observe(seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    fn scrape(metrics: &IngressMetrics) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&metrics.registry().gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counts_by_known_label_or_other() {
        let metrics = IngressMetrics::new().unwrap();
        metrics.count(EventType::parse("onMessageAdd"), Outcome::Modified);
        metrics.count(EventType::parse("onJunk.*"), Outcome::Published);
        metrics.count(EventType::parse("onAnotherJunk"), Outcome::Published);
        metrics.count(None, Outcome::BadRequest);
        let text = scrape(&metrics);
        assert!(text.contains(r#"frontline_ingress_requests_total{event_type="onMessageAdd",outcome="modified"} 1"#), "{text}");
        assert!(text.contains(
            r#"frontline_ingress_requests_total{event_type="other",outcome="published"} 2"#
        ));
        assert!(text.contains(
            r#"frontline_ingress_requests_total{event_type="other",outcome="bad_request"} 1"#
        ));
        let series = text
            .lines()
            .filter(|l| l.starts_with("frontline_ingress_requests_total{"))
            .count();
        assert_eq!(series, 24 * Outcome::ALL.len());
    }

    #[test]
    fn the_outcome_table_follows_declaration_order() {
        for (index, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, index, "{outcome:?}");
        }
    }

    #[test]
    fn histograms_resolve_half_a_millisecond_to_five_seconds() {
        let metrics = IngressMetrics::new().unwrap();
        metrics.observe(PathKind::Pre, 0.0003);
        metrics.observe(PathKind::Post, 4.0);
        let text = scrape(&metrics);
        assert!(
            text.contains(
                r#"frontline_ingress_request_duration_seconds_bucket{kind="pre",le="0.0005"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"frontline_ingress_request_duration_seconds_bucket{kind="post",le="2.5"} 0"#
        ));
        assert!(text.contains(
            r#"frontline_ingress_request_duration_seconds_bucket{kind="post",le="5"} 1"#
        ));
    }
}
