//! The `resolver` binary: parse the configuration, start logging, run until SIGINT/SIGTERM, or
//! run a one-off command (`directory import`, `twilio-setup`, `doctor`, `dlq`).

use std::process::ExitCode;

use clap::Parser;
use frontline_resolver::config::{Command, DirectoryCommand, DlqCommand};
use frontline_resolver::directory::kv;
use frontline_resolver::ops::{self, dlq, doctor, setup};
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
    match &config.command {
        Some(Command::Directory(DirectoryCommand::Import { file, bucket })) => {
            return match kv::import_file(&config.nats, bucket, file).await {
                Ok(count) => {
                    tracing::info!(count, bucket = %bucket, "customers imported");
                    ExitCode::SUCCESS
                }
                Err(err) => exit::failure("import", &err),
            };
        }
        Some(Command::TwilioSetup { .. } | Command::Doctor { .. } | Command::Dlq(_)) => {
            return command(&config).await;
        }
        None => {}
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

/// An operations command: plain output on stdout, a one-line error on stderr, exit 1 on failure.
async fn command(config: &Config) -> ExitCode {
    match operate(config).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn operate(config: &Config) -> Result<ExitCode, String> {
    match &config.command {
        Some(Command::TwilioSetup {
            service,
            filters,
            method,
            apply,
        }) => {
            let twilio = ops::twilio_client(config)?;
            let public = ops::public_url(config)?;
            let outcome = setup::run(
                &twilio,
                service.as_deref(),
                &public,
                filters,
                method,
                *apply,
            )
            .await?;
            println!();
            print!("{}", setup::callback_urls(&public));
            Ok(match outcome {
                setup::SetupOutcome::InLine => ExitCode::SUCCESS,
                setup::SetupOutcome::WouldChange => ExitCode::from(2),
            })
        }
        Some(Command::Doctor { json, skip_public }) => {
            let checks = doctor::run(config, *skip_public).await;
            if *json {
                for check in &checks {
                    println!(
                        "{}",
                        serde_json::to_string(check).map_err(|e| e.to_string())?
                    );
                }
            } else {
                print!("{}", doctor::render(&checks));
            }
            Ok(if checks.iter().all(|c| c.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Some(Command::Dlq(command)) => dead_letters(config, command).await,
        _ => Ok(ExitCode::SUCCESS),
    }
}

async fn dead_letters(config: &Config, command: &DlqCommand) -> Result<ExitCode, String> {
    let js = ops::jetstream(config).await?;
    match command {
        DlqCommand::List { limit } => {
            let letters = dlq::list(&js, *limit).await?;
            println!(
                "{:<8} {:<30} {:<20} {:<50} reason",
                "seq", "time", "consumer", "original subject"
            );
            for letter in &letters {
                println!(
                    "{:<8} {:<30} {:<20} {:<50} {}",
                    letter.sequence,
                    letter.time,
                    letter.consumer,
                    letter.original_subject,
                    letter.reason
                );
            }
            println!("{} dead letter(s)", letters.len());
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Retry { sequences, all } => {
            let jobs = ops::jobs(config, &js).await?;
            let wanted = (!*all).then(|| sequences.clone());
            if wanted.as_ref().is_some_and(Vec::is_empty) {
                return Err("name the sequences to retry, or --all".into());
            }
            let retried = dlq::retry(&js, wanted, &jobs).await?;
            for sequence in &retried.done {
                println!("✔ {sequence}: handled, deleted from the DLQ");
            }
            for (sequence, reason) in &retried.failed {
                println!("✘ {sequence}: still fails, kept: {reason}");
            }
            Ok(if retried.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        DlqCommand::Purge => {
            let purged = dlq::purge(&js).await?;
            println!("{purged} dead letter(s) deleted");
            Ok(ExitCode::SUCCESS)
        }
    }
}
