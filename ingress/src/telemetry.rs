//! Logging and W3C trace context. Logs are filtered by `RUST_LOG` and written as text or JSON;
//! trace context is taken from the webhook's `traceparent` when valid, else started here, and
//! travels on every NATS message so a resolver continues the same trace.

use clap::ValueEnum;
use rand::Rng;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter when `RUST_LOG` is unset: our own lines at info, the NATS client's only when they
/// matter (it reports every reconnection attempt at info).
pub const DEFAULT_FILTER: &str = "info,async_nats=warn";

/// Installs the global subscriber (once, from `main`). `RUST_LOG` filters.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// A W3C `traceparent` for the next hop: the incoming one's trace id and flags with a new span
/// id when `incoming` is valid, else a new trace.
pub fn child_traceparent(incoming: Option<&str>) -> String {
    let mut rng = rand::rng();
    let span_id: u64 = rng.random_range(1..=u64::MAX);
    match incoming.and_then(parse_traceparent) {
        Some((trace_id, flags)) => format!("00-{trace_id}-{span_id:016x}-{flags}"),
        None => {
            let trace_id: u128 = rng.random_range(1..=u128::MAX);
            format!("00-{trace_id:032x}-{span_id:016x}-01")
        }
    }
}

/// The trace id of a valid `traceparent`.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    parse_traceparent(traceparent).map(|(trace_id, _)| trace_id)
}

/// `(trace id, flags)` of a version-00 `traceparent` with non-zero ids.
fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.trim().split('-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = parts.next().is_none()
        && version == "00"
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0');
    valid.then_some((trace_id, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn continues_a_valid_trace() {
        let child = child_traceparent(Some(INCOMING));
        assert_eq!(trace_id(&child), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(child.ends_with("-01"));
        assert_ne!(child, INCOMING, "a new span id");
    }

    #[test]
    fn starts_a_trace_for_missing_or_invalid_input() {
        for incoming in [
            None,
            Some(""),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"),
        ] {
            let child = child_traceparent(incoming);
            let id = trace_id(&child).expect("a valid new traceparent");
            assert_ne!(id, "4bf92f3577b34da6a3ce929d0e0e4736", "{incoming:?}");
            assert_eq!(child.len(), 55);
        }
    }
}
