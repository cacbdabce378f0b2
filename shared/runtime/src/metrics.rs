//! Metric helpers both binaries use: the latency buckets that resolve Twilio's budget, the label
//! of an event outside the known table, and the process metrics.

use prometheus::Registry;

/// Buckets from 0.5 ms to Twilio's 5 s budget.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The `event_type` label of anything outside the known table (or missing), so junk event types
/// add no series.
pub const OTHER_EVENT: &str = "other";

/// Registers `process_resident_memory_bytes` and the other process metrics (Linux).
///
/// # Errors
/// Only on a duplicate registration.
pub fn register_process_metrics(registry: &Registry) -> Result<(), prometheus::Error> {
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    #[cfg(not(target_os = "linux"))]
    let _ = registry;
    Ok(())
}
