//! The `resolver` binary: parse the configuration, start logging, run until SIGINT/SIGTERM (or
//! run a one-off command such as `resolver directory import FILE --bucket NAME`).

use std::process::ExitCode;

use clap::Parser;
use frontline_resolver::config::{Command, DirectoryCommand};
use frontline_resolver::directory::kv;
use frontline_resolver::{Config, RunError, run};
use frontline_runtime::exit;
use frontline_runtime::signal::shutdown_signal;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let _telemetry = config.telemetry.init("frontline-resolver");
    if let Err(err) = config.nats.validate() {
        return exit::config_error(&err);
    }
    if let Some(Command::Directory(DirectoryCommand::Import { file, bucket })) = &config.command {
        return match kv::import_file(&config.nats, bucket, file).await {
            Ok(count) => {
                tracing::info!(count, bucket = %bucket, "customers imported");
                ExitCode::SUCCESS
            }
            Err(err) => exit::failure("import", &err),
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
        Err(err @ (RunError::Config(_) | RunError::Directory(_))) => exit::config_error(&err),
        Err(err) => exit::failure("resolver", &err),
    }
}
