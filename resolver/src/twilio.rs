//! The Twilio Conversations REST client: read and update a participant's attributes. HTTPS
//! through rustls (the webpki roots, plus the certificates of `TWILIO_CA_FILE` when an egress
//! proxy re-signs TLS), HTTP Basic auth with the account SID and auth token or an API key and
//! secret, a timeout on every request. Errors are classified for the consumer:
//! retry later (429, 5xx, network, timeout), gone (404), or permanent (any other 4xx).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use frontline_runtime::secret::Secret;
use frontline_shared::subject::is_token;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prometheus::IntCounterVec;
use serde::Deserialize;

/// What to do about a failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioError {
    /// 429, 5xx, a network error or a timeout: try again later (after `retry_after` if given).
    #[error("temporary failure: {reason}")]
    Retry {
        /// What happened.
        reason: String,
        /// Twilio's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// 404: the participant (or conversation) no longer exists.
    #[error("404: not found")]
    Gone,
    /// 409: what was to be created exists already (a worker who is already a participant).
    #[error("already there")]
    Conflict,
    /// Any other 4xx, or an answer that cannot be understood: retrying will not help.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// The largest answer read from the REST API.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why `TWILIO_API_BASE` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "TWILIO_API_BASE {0:?} must be https:// (http:// only to a loopback address, for tests): the account's credentials travel with every call"
)]
pub struct InsecureApiBase(pub String);

/// Checks that `base` keeps the credentials encrypted: `https://`, or `http://` to a loopback
/// host (`localhost`, `127.0.0.0/8`, `[::1]`).
///
/// # Errors
/// [`InsecureApiBase`] for anything else.
pub fn check_api_base(base: &str) -> Result<(), InsecureApiBase> {
    let refused = || InsecureApiBase(base.to_owned());
    let (scheme, rest) = base.split_once("://").ok_or_else(refused)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(refused());
    }
    match scheme {
        "https" => Ok(()),
        "http" => {
            let host = match authority.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(""),
                None => authority
                    .rsplit_once(':')
                    .map_or(authority, |(host, _)| host),
            };
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback { Ok(()) } else { Err(refused()) }
        }
        _ => Err(refused()),
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// `TWILIO_CA_FILE` could not be read as PEM certificates.
    #[error("TWILIO_CA_FILE {path}: {cause}")]
    CaFile {
        /// The file.
        path: String,
        /// What was wrong.
        cause: String,
    },
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The roots the client trusts: the webpki roots (Mozilla's), plus every certificate of
/// `ca_file` when given.
///
/// # Errors
/// When `ca_file` cannot be read, holds no certificate, or holds one rustls refuses.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsSetupError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let failed = |cause: String| TlsSetupError::CaFile {
            path: path.display().to_string(),
            cause,
        };
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|err| failed(err.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| failed(err.to_string()))?;
        if certificates.is_empty() {
            return Err(failed("no PEM certificate in the file".into()));
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|err| failed(err.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A Conversations webhook configuration, as Twilio answers it (snake_case JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct WebhookConfiguration {
    /// The Pre-Event URL.
    #[serde(default)]
    pub pre_webhook_url: Option<String>,
    /// The Post-Event URL.
    #[serde(default)]
    pub post_webhook_url: Option<String>,
    /// The events sent.
    #[serde(default)]
    pub filters: Vec<String>,
    /// `POST` or `GET`.
    #[serde(default)]
    pub method: Option<String>,
    /// `webhook` or `flex` (the global configuration only).
    #[serde(default)]
    pub target: Option<String>,
}

/// Credentials for the REST API.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Account SID or API key SID.
    pub username: String,
    /// Auth token or API key secret.
    pub password: Secret,
}

/// The REST client.
#[derive(Debug, Clone)]
pub struct TwilioClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    authorization: HeaderValue,
    timeout: Duration,
    requests: IntCounterVec,
}

#[derive(Deserialize)]
struct Participant {
    #[serde(default)]
    attributes: Option<String>,
}

impl TwilioClient {
    /// A client for `base` (e.g. `https://conversations.twilio.com`) trusting `tls`'s roots
    /// (see [`tls_config`]); `requests` counts calls by method and status.
    pub fn new(
        base: &str,
        credentials: &Credentials,
        timeout: Duration,
        tls: rustls::ClientConfig,
        requests: IntCounterVec,
    ) -> TwilioClient {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let basic = STANDARD.encode(format!(
            "{}:{}",
            credentials.username,
            credentials.password.expose()
        ));
        let mut authorization = HeaderValue::from_str(&format!("Basic {basic}"))
            .expect("Base64 is a valid header value");
        authorization.set_sensitive(true);
        TwilioClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            authorization,
            timeout,
            requests,
        }
    }

    /// The participant's current attributes (a JSON document in a string).
    ///
    /// # Errors
    /// A classified [`TwilioError`].
    pub async fn participant_attributes(
        &self,
        conversation: &str,
        participant: &str,
        traceparent: Option<&str>,
    ) -> Result<String, TwilioError> {
        let url = self.participant_url(conversation, participant)?;
        let body = self.call(Method::GET, &url, None, traceparent).await?;
        let participant: Participant = serde_json::from_slice(&body)
            .map_err(|err| TwilioError::Permanent(format!("unreadable participant: {err}")))?;
        Ok(participant.attributes.unwrap_or_else(|| "{}".to_owned()))
    }

    /// Replaces the participant's attributes.
    ///
    /// # Errors
    /// A classified [`TwilioError`].
    pub async fn set_participant_attributes(
        &self,
        conversation: &str,
        participant: &str,
        attributes: &str,
        traceparent: Option<&str>,
    ) -> Result<(), TwilioError> {
        let url = self.participant_url(conversation, participant)?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("Attributes", attributes)
            .finish();
        self.call(Method::POST, &url, Some(form), traceparent)
            .await
            .map(drop)
    }

    /// Adds the chat user `identity` (a Frontline worker) to the conversation. A participant who
    /// is already there is [`TwilioError::Conflict`].
    ///
    /// # Errors
    /// A classified [`TwilioError`].
    pub async fn add_participant(
        &self,
        conversation: &str,
        identity: &str,
        traceparent: Option<&str>,
    ) -> Result<(), TwilioError> {
        if !is_token(conversation) {
            return Err(TwilioError::Permanent(
                "conversation SID is not a SID".into(),
            ));
        }
        let url = format!("{}/v1/Conversations/{conversation}/Participants", self.base);
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("Identity", identity)
            .finish();
        self.call(Method::POST, &url, Some(form), traceparent)
            .await
            .map(drop)
    }

    /// The Conversations webhook configuration: the account's global one, or a Conversations
    /// service's (`service` = its `IS...` SID).
    ///
    /// # Errors
    /// A classified [`TwilioError`].
    pub async fn webhook_configuration(
        &self,
        service: Option<&str>,
    ) -> Result<WebhookConfiguration, TwilioError> {
        let url = self.configuration_url(service)?;
        let body = self.call(Method::GET, &url, None, None).await?;
        serde_json::from_slice(&body)
            .map_err(|err| TwilioError::Permanent(format!("unreadable configuration: {err}")))
    }

    /// Sets the webhook configuration's fields that `wanted` has (`PreWebhookUrl`,
    /// `PostWebhookUrl`, `Filters` repeated when any, `Method`, `Target`); returns what Twilio
    /// then holds.
    ///
    /// # Errors
    /// A classified [`TwilioError`].
    pub async fn set_webhook_configuration(
        &self,
        service: Option<&str>,
        wanted: &WebhookConfiguration,
    ) -> Result<WebhookConfiguration, TwilioError> {
        let url = self.configuration_url(service)?;
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("PreWebhookUrl", &wanted.pre_webhook_url),
            ("PostWebhookUrl", &wanted.post_webhook_url),
            ("Method", &wanted.method),
            ("Target", &wanted.target),
        ] {
            if let Some(value) = value {
                form.append_pair(name, value);
            }
        }
        for filter in &wanted.filters {
            form.append_pair("Filters", filter);
        }
        let body = self
            .call(Method::POST, &url, Some(form.finish()), None)
            .await?;
        serde_json::from_slice(&body)
            .map_err(|err| TwilioError::Permanent(format!("unreadable configuration: {err}")))
    }

    fn configuration_url(&self, service: Option<&str>) -> Result<String, TwilioError> {
        match service {
            None => Ok(format!("{}/v1/Configuration/Webhooks", self.base)),
            Some(sid) if is_token(sid) => Ok(format!(
                "{}/v1/Services/{sid}/Configuration/Webhooks",
                self.base
            )),
            Some(_) => Err(TwilioError::Permanent(
                "the service SID is not a SID".into(),
            )),
        }
    }

    fn participant_url(
        &self,
        conversation: &str,
        participant: &str,
    ) -> Result<String, TwilioError> {
        // SIDs go into the path: anything but a plain token would change the URL.
        if !is_token(conversation) || !is_token(participant) {
            return Err(TwilioError::Permanent(
                "conversation or participant SID is not a SID".into(),
            ));
        }
        Ok(format!(
            "{}/v1/Conversations/{conversation}/Participants/{participant}",
            self.base
        ))
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        form: Option<String>,
        traceparent: Option<&str>,
    ) -> Result<Bytes, TwilioError> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::ACCEPT, "application/json");
        if let Some(traceparent) = traceparent.and_then(|t| HeaderValue::from_str(t).ok()) {
            request = request.header("traceparent", traceparent);
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Full::new(Bytes::from(form))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request
            .body(body)
            .map_err(|err| TwilioError::Permanent(err.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|err| retry(format!("network: {err}")))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // Twilio's answers are a few KiB: a larger one is read no further.
            let body = match http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                    return Err(TwilioError::Permanent(format!(
                        "{status}: an answer over {MAX_ANSWER_BYTES} bytes"
                    )));
                }
                Err(err) => return Err(retry(format!("reading: {err}"))),
            };
            Ok::<_, TwilioError>((status, retry_after, body))
        };
        let outcome = tokio::time::timeout(self.timeout, exchange).await;
        let (status, retry_after, body) = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(err)) => {
                self.requests
                    .with_label_values(&[method.as_str(), "error"])
                    .inc();
                return Err(err);
            }
            Err(_) => {
                self.requests
                    .with_label_values(&[method.as_str(), "timeout"])
                    .inc();
                return Err(retry(format!("no answer within {:?}", self.timeout)));
            }
        };
        self.requests
            .with_label_values(&[method.as_str(), status.as_str()])
            .inc();
        classify(status, retry_after, body)
    }
}

fn retry(reason: String) -> TwilioError {
    TwilioError::Retry {
        reason,
        retry_after: None,
    }
}

/// Sorts an answer into success or a [`TwilioError`] class.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Bytes,
) -> Result<Bytes, TwilioError> {
    match status {
        s if s.is_success() => Ok(body),
        StatusCode::NOT_FOUND => Err(TwilioError::Gone),
        StatusCode::CONFLICT => Err(TwilioError::Conflict),
        StatusCode::TOO_MANY_REQUESTS => Err(TwilioError::Retry {
            reason: "429 Too Many Requests".into(),
            retry_after,
        }),
        s if s.is_server_error() => Err(TwilioError::Retry {
            reason: format!("{s}"),
            retry_after,
        }),
        s => {
            let detail: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            Err(TwilioError::Permanent(format!("{s}: {detail}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        let ok = classify(StatusCode::OK, None, Bytes::from_static(b"{}"));
        assert_eq!(ok.unwrap(), Bytes::from_static(b"{}"));
        assert_eq!(
            classify(StatusCode::NOT_FOUND, None, Bytes::new()),
            Err(TwilioError::Gone)
        );
        let limited = classify(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(3)),
            Bytes::new(),
        );
        assert!(
            matches!(limited, Err(TwilioError::Retry { retry_after: Some(d), .. }) if d == Duration::from_secs(3))
        );
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, Bytes::new()),
            Err(TwilioError::Retry { .. })
        ));
        let bad = classify(
            StatusCode::BAD_REQUEST,
            None,
            Bytes::from_static(br#"{"code":50100}"#),
        );
        assert_eq!(
            bad,
            Err(TwilioError::Permanent(
                r#"400 Bad Request: {"code":50100}"#.into()
            ))
        );
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, Bytes::new()),
            Err(TwilioError::Permanent(_))
        ));
    }

    #[test]
    fn the_api_base_keeps_credentials_encrypted() {
        for good in [
            "https://conversations.twilio.com",
            "https://proxy.internal:8443/twilio",
            "http://127.0.0.1:9999",
            "http://127.5.0.1",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert_eq!(check_api_base(good), Ok(()), "{good}");
        }
        for bad in [
            "http://conversations.twilio.com",
            "http://10.0.0.5:8080",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "ftp://x",
            "conversations.twilio.com",
            "https://user:pw@x.example",
            "http://",
        ] {
            assert!(check_api_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for path in [empty.as_path(), Path::new("/nonexistent/ca.pem")] {
            let err = tls_config(Some(path)).unwrap_err();
            assert!(err.to_string().contains("TWILIO_CA_FILE"), "{err}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sids_must_be_tokens() {
        let credentials = Credentials {
            username: "AC1".into(),
            password: Secret::new("t"),
        };
        let counter =
            IntCounterVec::new(prometheus::Opts::new("x", "x"), &["method", "status"]).unwrap();
        let client = TwilioClient::new(
            "https://conversations.twilio.com/",
            &credentials,
            Duration::from_secs(1),
            tls_config(None).unwrap(),
            counter,
        );
        assert_eq!(
            client.participant_url("CH1", "MB2").unwrap(),
            "https://conversations.twilio.com/v1/Conversations/CH1/Participants/MB2"
        );
        assert!(client.participant_url("CH1/../x", "MB2").is_err());
        assert!(client.participant_url("CH1", "").is_err());
    }
}
