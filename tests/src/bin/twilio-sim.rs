//! `twilio-sim`: signs a Conversations webhook exactly as Twilio would and prints a ready-to-paste
//! `curl` command for it, or sends it and prints the answer.
//!
//! ```text
//! twilio-sim --public-url https://hooks.example.com --token $TWILIO_AUTH_TOKEN \
//!     EventType=onConversationAdd MessagingBinding.Address=+14155550101
//! twilio-sim --shared-key ks_1:SECRET --algorithm HMAC_SHA256 EventType=onMessageAdded ...
//! ```

use std::process::ExitCode;

use clap::Parser;
use frontline_tests::http::{WEBHOOK_PATH, WebhookClient};
use frontline_tests::twilio::{Params, sign, sign_sha256};

/// Signs a Twilio Conversations webhook.
#[derive(Debug, Parser)]
#[command(name = "twilio-sim", version, about)]
struct Args {
    /// The origin Twilio is configured with (the ingress's PUBLIC_URL).
    #[arg(long, env = "PUBLIC_URL", default_value = "http://localhost:8080")]
    public_url: String,
    /// Where the ingress listens, when it differs from the public URL (behind a tunnel).
    #[arg(long)]
    target: Option<String>,
    /// The auth token to sign with.
    #[arg(
        long,
        env = "TWILIO_AUTH_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    token: String,
    /// Sign with a Twilio SharedKey instead of the auth token: KEYID:SECRET.
    #[arg(long, value_name = "KEYID:SECRET")]
    shared_key: Option<String>,
    /// The SharedKey's algorithm: HMAC_SHA256 or HMAC_SHA1.
    #[arg(long, default_value = "HMAC_SHA256")]
    algorithm: String,
    /// Send the webhook and print the answer instead of printing a curl command.
    #[arg(long)]
    send: bool,
    /// The path to sign and send to: the webhook, or a Frontline callback such as
    /// /callbacks/crm.
    #[arg(long, default_value = WEBHOOK_PATH)]
    path: String,
    /// Parameters, as Name=value.
    #[arg(required = true)]
    params: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut params: Params = Vec::new();
    for param in &args.params {
        let Some((name, value)) = param.split_once('=') else {
            eprintln!("parameters are Name=value, got {param:?}");
            return ExitCode::from(64);
        };
        params.push((name.to_owned(), value.to_owned()));
    }
    let public = args.public_url.trim_end_matches('/');
    let path = args.path.as_str();
    let url = format!("{public}{path}");
    let (signature, settings) = match args.shared_key.as_deref().map(|k| k.split_once(':')) {
        None => (sign(&args.token, &url, &params), None),
        Some(Some((id, secret))) => {
            let signature = if args.algorithm.eq_ignore_ascii_case("HMAC_SHA1") {
                sign(secret, &url, &params)
            } else if args.algorithm.eq_ignore_ascii_case("HMAC_SHA256") {
                sign_sha256(secret, &url, &params)
            } else {
                eprintln!("--algorithm is HMAC_SHA256 or HMAC_SHA1");
                return ExitCode::from(64);
            };
            (
                signature,
                Some(format!("key={id},algorithm={}", args.algorithm)),
            )
        }
        Some(None) => {
            eprintln!("--shared-key is KEYID:SECRET");
            return ExitCode::from(64);
        }
    };
    let target = args
        .target
        .as_deref()
        .unwrap_or(public)
        .trim_end_matches('/');
    if !args.send {
        println!("curl -sS -i -X POST '{target}{path}' \\");
        println!("  -H 'X-Twilio-Signature: {signature}' \\");
        if let Some(settings) = &settings {
            println!("  -H 'X-Twilio-Webhooks-Signature-Settings: {settings}' \\");
        }
        let data: Vec<String> = params
            .iter()
            .map(|(name, value)| {
                format!(
                    "  --data-urlencode '{}'",
                    shell_quote(&format!("{name}={value}"))
                )
            })
            .collect();
        println!("{}", data.join(" \\\n"));
        return ExitCode::SUCCESS;
    }
    let Some(addr) = target
        .strip_prefix("http://")
        .and_then(|host| host.parse().ok())
    else {
        eprintln!("--send needs --target http://IP:PORT");
        return ExitCode::from(64);
    };
    let mut headers = vec![("X-Twilio-Signature", signature.as_str())];
    if let Some(settings) = &settings {
        headers.push(("X-Twilio-Webhooks-Signature-Settings", settings.as_str()));
    }
    let answer = WebhookClient::new(addr)
        .post_form(path, &params, &headers)
        .await;
    println!("{} {}", answer.status, answer.text());
    if answer.status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Escapes single quotes for a single-quoted shell word.
fn shell_quote(value: &str) -> String {
    value.replace('\'', r"'\''")
}
