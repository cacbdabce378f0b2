//! How a binary's `main` ends: success, an unusable configuration (exit code 64, sysexits'
//! `EX_USAGE`, so a supervisor can tell a typo from a crash), or another failure.

use std::fmt::Display;
use std::process::ExitCode;

/// The exit code for an unusable configuration (sysexits' `EX_USAGE`).
pub const EXIT_CONFIG: u8 = 64;

/// Logs an unusable configuration and returns exit code 64.
pub fn config_error(cause: &dyn Display) -> ExitCode {
    tracing::error!(cause = %cause, "invalid configuration");
    ExitCode::from(EXIT_CONFIG)
}

/// Logs why `service` failed and returns exit code 1.
pub fn failure(service: &str, cause: &dyn Display) -> ExitCode {
    tracing::error!(cause = %cause, "{service} failed");
    ExitCode::FAILURE
}
