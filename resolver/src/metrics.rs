//! The resolver's Prometheus metrics, on an explicit registry. Labelled series are resolved at
//! start; `event_type` takes the known names or `other`.

use frontline_runtime::metrics::{LATENCY_BUCKETS, OTHER_EVENT, register_process_metrics};
use frontline_shared::{CallbackRoute, EventType};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::directory::Lookup;

/// How the resolver finished with a message: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted unchanged.
    Accepted,
    /// Answered with changes.
    Modified,
    /// Rejected.
    Rejected,
    /// Could not decide (undecodable request, say).
    Error,
    /// Skipped: the ingress had stopped waiting.
    Expired,
    /// Nothing to do for this message (not a customer participant, unknown customer).
    Skipped,
    /// A temporary failure: redelivered later.
    Retried,
    /// The participant no longer exists.
    Gone,
    /// Given up on: published to the dead-letter stream.
    DeadLettered,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 9] = [
        Outcome::Accepted,
        Outcome::Modified,
        Outcome::Rejected,
        Outcome::Error,
        Outcome::Expired,
        Outcome::Skipped,
        Outcome::Retried,
        Outcome::Gone,
        Outcome::DeadLettered,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Modified => "modified",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
            Outcome::Expired => "expired",
            Outcome::Skipped => "skipped",
            Outcome::Retried => "retried",
            Outcome::Gone => "gone",
            Outcome::DeadLettered => "dead_lettered",
        }
    }
}

/// Every resolver metric.
#[derive(Debug, Clone)]
pub struct ResolverMetrics {
    registry: Registry,
    messages: Vec<[IntCounter; Outcome::ALL.len()]>,
    /// `[event label]`, resolved at start like `messages`.
    handle_duration: Vec<Histogram>,
    lookups_hit: IntCounter,
    lookups_miss: IntCounter,
    /// `frontline_resolver_twilio_api_requests_total{method,status}`.
    pub twilio_api_requests: IntCounterVec,
    /// Events in the stream not yet delivered to the participant consumer.
    pub consumer_pending: IntGauge,
    /// Events delivered to the participant consumer and not yet acknowledged.
    pub consumer_ack_pending: IntGauge,
    /// Pre-event requests dropped for naming a reply subject outside the inbox prefix.
    pub foreign_reply: IntCounter,
    callbacks: IntCounterVec,
    /// Routing callbacks by result.
    pub routing: IntCounterVec,
}

impl ResolverMetrics {
    /// Registers every metric (and the process metrics) on a new registry.
    ///
    /// # Errors
    /// Only on a duplicate registration, which would be a bug.
    pub fn new() -> Result<ResolverMetrics, prometheus::Error> {
        let registry = Registry::new();
        let messages_vec = IntCounterVec::new(
            Opts::new(
                "frontline_resolver_messages_total",
                "Messages handled by event type and outcome.",
            ),
            &["event_type", "outcome"],
        )?;
        let messages = event_labels()
            .map(|event| {
                Outcome::ALL
                    .map(|outcome| messages_vec.with_label_values(&[event, outcome.as_str()]))
            })
            .collect();
        let handle_duration = HistogramVec::new(
            HistogramOpts::new(
                "frontline_resolver_handle_duration_seconds",
                "Time to handle one message.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["event_type"],
        )?;
        let lookups = IntCounterVec::new(
            Opts::new(
                "frontline_resolver_directory_lookups_total",
                "Customer directory lookups by result.",
            ),
            &["result"],
        )?;
        let twilio_api_requests = IntCounterVec::new(
            Opts::new(
                "frontline_resolver_twilio_api_requests_total",
                "Twilio REST API requests by method and status.",
            ),
            &["method", "status"],
        )?;
        registry.register(Box::new(messages_vec))?;
        registry.register(Box::new(handle_duration.clone()))?;
        registry.register(Box::new(lookups.clone()))?;
        // The usual series exist from the start, so rates and alerts see zeros, not gaps.
        for method in ["GET", "POST"] {
            twilio_api_requests.with_label_values(&[method, "200"]);
        }
        registry.register(Box::new(twilio_api_requests.clone()))?;
        let consumer_pending = IntGauge::new(
            "frontline_resolver_consumer_pending",
            "onParticipantAdded events not yet delivered to the resolvers' consumer.",
        )?;
        let consumer_ack_pending = IntGauge::new(
            "frontline_resolver_consumer_ack_pending",
            "onParticipantAdded events delivered and not yet acknowledged.",
        )?;
        registry.register(Box::new(consumer_pending.clone()))?;
        registry.register(Box::new(consumer_ack_pending.clone()))?;
        let foreign_reply = IntCounter::new(
            "frontline_resolver_foreign_reply_subjects_total",
            "Pre-event requests dropped for naming a reply subject outside the inbox prefix.",
        )?;
        registry.register(Box::new(foreign_reply.clone()))?;
        let callbacks = IntCounterVec::new(
            Opts::new(
                "frontline_resolver_callbacks_total",
                "Frontline callbacks answered, by route, Location and status (or expired).",
            ),
            &["route", "location", "status"],
        )?;
        registry.register(Box::new(callbacks.clone()))?;
        let routing = IntCounterVec::new(
            Opts::new(
                "frontline_resolver_routing_total",
                "Routing callbacks by result: routed, already_there, unrouted, retried, dead_lettered, error.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(routing.clone()))?;
        // Every series exists from the start, at zero, for rates and alerts.
        for result in [
            "routed",
            "already_there",
            "unrouted",
            "gone",
            "retried",
            "dead_lettered",
            "error",
        ] {
            routing.with_label_values(&[result]);
        }
        for route in CallbackRoute::ALL {
            for location in route.locations() {
                callbacks.with_label_values(&[route.as_str(), location, "200"]);
            }
        }
        register_process_metrics(&registry)?;
        Ok(ResolverMetrics {
            registry,
            messages,
            handle_duration: event_labels()
                .map(|event| handle_duration.with_label_values(&[event]))
                .collect(),
            lookups_hit: lookups.with_label_values(&["hit"]),
            lookups_miss: lookups.with_label_values(&["miss"]),
            twilio_api_requests,
            consumer_pending,
            consumer_ack_pending,
            foreign_reply,
            callbacks,
            routing,
        })
    }

    /// Counts one callback (`location` is kept only when the route knows it).
    pub fn callback(&self, route: CallbackRoute, location: &str, status: &str) {
        let location = route
            .locations()
            .iter()
            .find(|known| **known == location)
            .copied()
            .unwrap_or(OTHER_EVENT);
        self.callbacks
            .with_label_values(&[route.as_str(), location, status])
            .inc();
    }

    /// The registry `/metrics` serves.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one handled message and its handling time.
    pub fn handled(&self, event: Option<EventType>, outcome: Outcome, seconds: f64) {
        let row = event.map_or(EventType::ALL.len(), |e| e as usize);
        self.messages[row][outcome as usize].inc();
        self.handle_duration[row].observe(seconds);
    }

    /// Counts one directory lookup.
    pub fn lookup(&self, lookup: Lookup) {
        match lookup {
            Lookup::Hit => self.lookups_hit.inc(),
            Lookup::Miss => self.lookups_miss.inc(),
        }
    }
}

fn event_labels() -> impl Iterator<Item = &'static str> {
    EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .chain([OTHER_EVENT])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_table_follows_declaration_order() {
        for (index, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, index, "{outcome:?}");
        }
    }
}
