//! The `ingress` binary: parse the configuration, start logging, bind, run until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use frontline_ingress::server::shutdown_signal;
use frontline_ingress::{Config, RunError, run};

/// The exit code for an unusable configuration (sysexits' EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let _telemetry = config.telemetry.init("frontline-ingress");
    if let Err(err) = config.validate() {
        tracing::error!(cause = %err, "invalid configuration");
        return ExitCode::from(EXIT_CONFIG);
    }
    let bind = |addr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .inspect_err(|err| {
                tracing::error!(%addr, cause = %err, "cannot listen");
            })
    };
    let (Ok(listener), Ok(admin)) = (bind(config.listen).await, bind(config.admin_listen).await)
    else {
        return ExitCode::FAILURE;
    };
    match run(listener, admin, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err @ RunError::Config(_)) => {
            tracing::error!(cause = %err, "invalid configuration");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(err) => {
            tracing::error!(cause = %err, "ingress failed");
            ExitCode::FAILURE
        }
    }
}
