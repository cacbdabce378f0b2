//! The `resolver` binary: parse the configuration, start logging, run until SIGINT/SIGTERM (or
//! run a one-off command such as `resolver directory import FILE --bucket NAME`).

use std::process::ExitCode;

use clap::Parser;
use frontline_ingress::server::shutdown_signal;
use frontline_resolver::config::{Command, DirectoryCommand};
use frontline_resolver::{Config, RunError, import_directory, run};

/// The exit code for an unusable configuration (sysexits' EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let _telemetry = config.telemetry.init("frontline-resolver");
    if let Some(Command::Directory(DirectoryCommand::Import { file, bucket })) = &config.command {
        return match import_directory(&config, file, bucket).await {
            Ok(count) => {
                tracing::info!(count, bucket = %bucket, "customers imported");
                ExitCode::SUCCESS
            }
            Err(err) => {
                tracing::error!(cause = %err, "import failed");
                ExitCode::FAILURE
            }
        };
    }
    let admin = match tokio::net::TcpListener::bind(config.admin_listen).await {
        Ok(admin) => admin,
        Err(err) => {
            tracing::error!(addr = %config.admin_listen, cause = %err, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    match run(admin, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err @ (RunError::Config(_) | RunError::Directory(_))) => {
            tracing::error!(cause = %err, "invalid configuration");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(err) => {
            tracing::error!(cause = %err, "resolver failed");
            ExitCode::FAILURE
        }
    }
}
