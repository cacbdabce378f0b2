//! The `ingress` binary: parse the configuration, start logging, bind, run until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use frontline_ingress::{Config, RunError, run};
use frontline_runtime::exit;
use frontline_runtime::signal::shutdown_signal;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let _telemetry = config.telemetry.init("frontline-ingress");
    if let Err(err) = config.validate() {
        return exit::config_error(&err);
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
        Err(err @ RunError::Config(_)) => exit::config_error(&err),
        Err(err) => exit::failure("ingress", &err),
    }
}
