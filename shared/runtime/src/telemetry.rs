//! Logging, W3C trace context and optional OpenTelemetry export. Logs are filtered by `RUST_LOG`
//! and written as text or JSON. Trace context is taken from the webhook's `traceparent` when
//! valid, else started here, and travels on every NATS message so a resolver continues the same
//! trace and passes it on to Twilio's REST API. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are
//! also exported over OTLP/HTTP; off by default.

use clap::ValueEnum;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use rand::Rng;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging and tracing settings, shared by both binaries.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// OTLP/HTTP collector base URL (e.g. http://otel-collector:4318); spans are exported when set.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

impl TelemetryArgs {
    /// Installs the global subscriber for `service` (once, from `main`).
    pub fn init(&self, service: &'static str) -> Telemetry {
        init(self.log_format, self.otlp_endpoint.as_deref(), service)
    }
}

/// The filter when `RUST_LOG` is unset: our own lines at info, the NATS client's only when they
/// matter (it reports every reconnection attempt at info).
pub const DEFAULT_FILTER: &str = "info,async_nats=warn";

/// Keeps the OpenTelemetry exporter alive; dropping it flushes the spans not yet sent.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends every finished span now (tests, shutdown).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber (once, from `main`): `RUST_LOG` filters, logs to stdout,
/// spans to `otlp_endpoint` when given.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>, service: &'static str) -> Telemetry {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|directives| EnvFilter::try_new(directives).is_ok())
        .unwrap_or_else(|| DEFAULT_FILTER.to_owned());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    install(
        format,
        &directives,
        otlp_endpoint,
        service,
        ansi,
        std::io::stdout,
    )
}

/// The target of the per-request spans (one per webhook, pre-event request, callback and
/// stored event). The log layer takes them only when `directives` enable debug (they then
/// prefix every line logged inside a request); the OpenTelemetry layer, when configured, always.
/// At the default level, without export, no layer wants them, and a span that no layer wants
/// is never built: its fields are neither formatted nor stored.
pub const REQUEST_SPANS: &str = "frontline::request";

/// Installs the global subscriber with explicit filter directives (`RUST_LOG` syntax) and log
/// writer (colours only when `ansi`).
pub fn install<W>(
    format: LogFormat,
    directives: &str,
    otlp_endpoint: Option<&str>,
    service: &'static str,
    ansi: bool,
    writer: W,
) -> Telemetry
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let provider = otlp_endpoint.and_then(|endpoint| match otlp_provider(endpoint, service) {
        Ok(provider) => Some(provider),
        Err(err) => {
            eprintln!("OpenTelemetry export disabled: {err}");
            None
        }
    });
    let tracer = provider.as_ref().map(|provider| provider.tracer(service));
    let _ = subscriber(format, directives, tracer, ansi, writer).try_init();
    Telemetry { provider }
}

/// The subscriber: the log layer, and the OpenTelemetry layer when there is a `tracer`.
fn subscriber<W>(
    format: LogFormat,
    directives: &str,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // Two shapes rather than an `Option` layer: an absent `Option` layer counts as one that
    // wants every span, so every per-request span would be built for nobody.
    match tracer {
        Some(tracer) => Box::new(
            tracing_subscriber::registry()
                .with(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(EnvFilter::new(directives)),
                )
                .with(log_layer(format, directives, ansi, writer)),
        ),
        None => Box::new(
            tracing_subscriber::registry().with(log_layer(format, directives, ansi, writer)),
        ),
    }
}

/// The log layer: `directives` filter it, and it takes the per-request spans only when they
/// enable debug.
fn log_layer<W, S>(
    format: LogFormat,
    directives: &str,
    ansi: bool,
    writer: W,
) -> Box<dyn Layer<S> + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::filter::LevelFilter;
    let mut filter = EnvFilter::new(directives);
    let spans_in_logs = filter
        .max_level_hint()
        .is_none_or(|level| level >= LevelFilter::DEBUG);
    // A directive, not a predicate: the filter then decides once per call site, and a span
    // or event it turns off costs nothing at run time.
    if !spans_in_logs {
        filter = filter.add_directive(
            format!("{REQUEST_SPANS}=off")
                .parse()
                .expect("a valid directive"),
        );
    }
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    }
}

/// An OTLP/HTTP (protobuf) exporter to `endpoint` (the collector's base URL, as in
/// `OTEL_EXPORTER_OTLP_ENDPOINT`; `/v1/traces` is appended), batching spans on its own thread.
fn otlp_provider(
    endpoint: &str,
    service: &'static str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig;
    let base = endpoint.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The longest piece of a value from outside (a request, a NATS message) that a log line or a
/// span field carries.
pub const MAX_LOGGED_VALUE: usize = 128;

/// `value` cut to [`MAX_LOGGED_VALUE`] bytes (at a character boundary), for logging: a value from
/// outside is never logged whole, so no client can fill the logs or the trace backend.
pub fn cut(value: &str) -> &str {
    if value.len() <= MAX_LOGGED_VALUE {
        return value;
    }
    let mut end = MAX_LOGGED_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Makes `span` continue the trace of `incoming` (a `traceparent`), records its `trace_id`
/// field, and returns the `traceparent` for the next hop: this span's own context when spans are
/// exported, else a new span id under the same trace (or a new trace when `incoming` is absent
/// or invalid).
pub fn continue_trace(span: &tracing::Span, incoming: Option<&str>) -> String {
    // A span no layer wants (the default, without export) has no context to join or record.
    if span.is_disabled() {
        return child_traceparent(incoming);
    }
    if let Some(remote) = incoming.and_then(remote_context) {
        let _ = span.set_parent(remote);
    }
    let context = span.context();
    let own = context.span().span_context().clone();
    let next = if own.is_valid() {
        format!(
            "00-{}-{}-{:02x}",
            own.trace_id(),
            own.span_id(),
            own.trace_flags().to_u8()
        )
    } else {
        child_traceparent(incoming)
    };
    if let Some(trace_id) = trace_id(&next) {
        span.record("trace_id", trace_id);
    }
    next
}

/// The OpenTelemetry context of a valid `traceparent`.
fn remote_context(traceparent: &str) -> Option<opentelemetry::Context> {
    let (trace_id, flags) = parse_traceparent(traceparent)?;
    let span_id = traceparent.trim().split('-').nth(2)?;
    let context = SpanContext::new(
        TraceId::from_hex(trace_id).ok()?,
        SpanId::from_hex(span_id).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    Some(opentelemetry::Context::new().with_remote_span_context(context))
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
    fn logged_values_are_cut_at_a_character_boundary() {
        assert_eq!(cut("short"), "short");
        let long = "a".repeat(1000);
        assert_eq!(cut(&long).len(), MAX_LOGGED_VALUE);
        let wide = "ñ".repeat(100);
        let cut_wide = cut(&wide);
        assert!(cut_wide.len() <= MAX_LOGGED_VALUE && cut_wide.len() >= MAX_LOGGED_VALUE - 1);
        assert!(wide.starts_with(cut_wide));
    }

    /// Whether a per-request span is built under a subscriber with the log layer alone.
    fn request_span_built(directives: &str) -> bool {
        let subscriber = subscriber(LogFormat::Text, directives, None, false, std::io::sink);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(target: REQUEST_SPANS, "webhook", event_type = "onConversationAdd");
            !span.is_disabled()
        })
    }

    #[test]
    fn request_spans_cost_nothing_unless_the_logs_want_debug() {
        assert!(!request_span_built(DEFAULT_FILTER));
        assert!(!request_span_built("warn"));
        assert!(request_span_built("debug"));
        assert!(request_span_built("info,frontline_ingress=debug"));
    }

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
