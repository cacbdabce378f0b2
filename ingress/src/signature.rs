//! Twilio's `X-Twilio-Signature`, as a pure module: no I/O, no clock.
//!
//! The signed string is the URL Twilio requested (the configured public origin followed by the
//! raw path and query) and, for a form POST, every parameter name directly followed by its
//! value, sorted by name in byte order, a repeated name's values de-duplicated and sorted. The
//! signature is the Base64 HMAC-SHA1 of that string keyed by the auth token. Like Twilio's own
//! validators we accept it over either port form of the URL (without the port, or with the
//! scheme's default port added), and we check every configured token so tokens can be rotated.
//!
//! Which secrets are tried: a token bound to the webhook's `AccountSid` (in `TWILIO_AUTH_TOKEN`
//! or the token bucket), then the bare tokens; or, when the request carries
//! `X-Twilio-Webhooks-Signature-Settings` with an algorithm and a key (Twilio's SharedKey
//! scheme), that key's secret from `TWILIO_SHARED_KEYS` with that algorithm (HMAC-SHA1 or
//! HMAC-SHA256). The header is read as Twilio's own validator (twilio-node 6.3) reads it.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::token_bucket::TokenBucket;
use frontline_runtime::secret::{Secret, Tokens};

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

/// The origin Twilio is configured with (`PUBLIC_URL`), in the two port forms Twilio's
/// validators accept; computed once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    with_port: String,
    without_port: String,
}

/// Why a `PUBLIC_URL` is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("PUBLIC_URL must be an origin like https://hooks.example.com[:port]: {0}")]
pub struct PublicUrlError(&'static str);

impl std::str::FromStr for PublicUrl {
    type Err = PublicUrlError;

    fn from_str(value: &str) -> Result<PublicUrl, PublicUrlError> {
        let value = value.trim_end_matches('/');
        let (scheme, rest) = value.split_once("://").ok_or(PublicUrlError("no scheme"))?;
        let default_port = match scheme {
            "https" => "443",
            "http" => "80",
            _ => return Err(PublicUrlError("the scheme must be http or https")),
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(PublicUrlError(
                "expected scheme://host[:port] and nothing else",
            ));
        }
        // An IPv6 literal's colons sit inside brackets; a port follows the last `]` or host.
        let host_end = rest.rfind(']').map_or(0, |i| i + 1);
        let (host, port) = match rest[host_end..].rfind(':') {
            Some(i) => (&rest[..host_end + i], Some(&rest[host_end + i + 1..])),
            None => (rest, None),
        };
        if host.is_empty() {
            return Err(PublicUrlError("no host"));
        }
        let port = match port {
            Some(port) if port.parse::<u16>().is_ok() => port,
            Some(_) => return Err(PublicUrlError("the port is not a number")),
            None => default_port,
        };
        Ok(PublicUrl {
            with_port: format!("{scheme}://{host}:{port}"),
            without_port: format!("{scheme}://{host}"),
        })
    }
}

impl PublicUrl {
    /// Both port forms of the origin.
    fn forms(&self) -> [&str; 2] {
        [&self.without_port, &self.with_port]
    }
}

/// What a verification found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Twilio-Signature` header.
    #[error("missing X-Twilio-Signature")]
    Missing,
    /// The header matched no secret over either URL form.
    #[error("X-Twilio-Signature does not match")]
    Mismatch,
    /// `bodySHA256` in the query does not match the body.
    #[error("bodySHA256 does not match the body")]
    BodyHashMismatch,
    /// No token applies to the webhook's account.
    #[error("no auth token for the webhook's AccountSid")]
    UnknownAccount,
    /// The signature settings name a key that is not configured.
    #[error("X-Twilio-Webhooks-Signature-Settings names an unknown key")]
    UnknownKey,
    /// The signature settings name an algorithm other than HMAC_SHA1 or HMAC_SHA256.
    #[error("X-Twilio-Webhooks-Signature-Settings names an unsupported algorithm")]
    UnsupportedAlgorithm,
}

impl SignatureError {
    /// Every reason, as `frontline_ingress_signature_failures_total` labels them.
    pub const REASONS: [&'static str; 5] = [
        "missing",
        "mismatch",
        "unknown_account",
        "unknown_key",
        "unsupported_algorithm",
    ];

    /// The `reason` label.
    pub const fn reason(self) -> &'static str {
        match self {
            SignatureError::Missing => "missing",
            SignatureError::Mismatch | SignatureError::BodyHashMismatch => "mismatch",
            SignatureError::UnknownAccount => "unknown_account",
            SignatureError::UnknownKey => "unknown_key",
            SignatureError::UnsupportedAlgorithm => "unsupported_algorithm",
        }
    }
}

/// The HMAC a signature is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA1: auth tokens, and `HMAC_SHA1` shared keys.
    Sha1,
    /// HMAC-SHA256: `HMAC_SHA256` shared keys.
    Sha256,
}

impl Algorithm {
    /// `HMAC_SHA1` or `HMAC_SHA256`, in any case.
    pub fn parse(name: &str) -> Option<Algorithm> {
        if name.eq_ignore_ascii_case("HMAC_SHA1") {
            Some(Algorithm::Sha1)
        } else if name.eq_ignore_ascii_case("HMAC_SHA256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }
}

/// `X-Twilio-Webhooks-Signature-Settings` as Twilio's validator reads it: comma-separated
/// `name=value` parts (split at the first `=`), names and values trimmed, names compared
/// exactly; for each name the first part with a non-empty value counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignatureSettings<'a> {
    /// `key`: the shared key's id.
    pub key: Option<&'a str>,
    /// `algorithm`: `HMAC_SHA1`, `HMAC_SHA256`, or anything else (refused).
    pub algorithm: Option<&'a str>,
}

impl<'a> SignatureSettings<'a> {
    /// Parses the header's value.
    pub fn parse(header: &'a str) -> SignatureSettings<'a> {
        let mut settings = SignatureSettings::default();
        for part in header.split(',') {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name.trim() {
                "key" if settings.key.is_none() => settings.key = Some(value),
                "algorithm" if settings.algorithm.is_none() => settings.algorithm = Some(value),
                _ => {}
            }
        }
        settings
    }
}

/// `TWILIO_SHARED_KEYS`: comma-separated `keyid:secret` (two during a rotation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedKeys(HashMap<String, Secret>);

impl std::str::FromStr for SharedKeys {
    type Err = String;

    fn from_str(value: &str) -> Result<SharedKeys, String> {
        let mut keys = HashMap::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, secret) = entry
                .split_once(':')
                .map(|(id, secret)| (id.trim(), secret.trim()))
                .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
                .ok_or("TWILIO_SHARED_KEYS entries are KEYID:SECRET")?;
            keys.insert(id.to_owned(), Secret::new(secret));
        }
        Ok(SharedKeys(keys))
    }
}

impl SharedKeys {
    /// No key configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one request's signature is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The raw path and query.
    pub path_and_query: &'a str,
    /// The form parameters (empty for GET and JSON bodies).
    pub params: &'a [(&'a str, &'a str)],
    /// `X-Twilio-Signature`.
    pub signature: Option<&'a str>,
    /// The `AccountSid` parameter, which picks the account's tokens.
    pub account_sid: Option<&'a str>,
    /// `X-Twilio-Webhooks-Signature-Settings`.
    pub settings: Option<&'a str>,
}

/// Checks signatures against the configured secrets and origin.
#[derive(Debug, Clone)]
pub struct SignatureVerifier {
    tokens: Tokens,
    bucket: Option<TokenBucket>,
    shared_keys: SharedKeys,
    public_url: PublicUrl,
}

impl SignatureVerifier {
    /// A verifier for these tokens (one or more) and origin.
    pub fn new(tokens: Tokens, public_url: PublicUrl) -> SignatureVerifier {
        SignatureVerifier {
            tokens,
            bucket: None,
            shared_keys: SharedKeys::default(),
            public_url,
        }
    }

    /// Also tokens per account from a watched KV bucket.
    pub fn with_bucket(mut self, bucket: TokenBucket) -> SignatureVerifier {
        self.bucket = Some(bucket);
        self
    }

    /// The token bucket, when configured.
    pub fn bucket(&self) -> Option<&TokenBucket> {
        self.bucket.as_ref()
    }

    /// Also Twilio's shared keys.
    pub fn with_shared_keys(mut self, keys: SharedKeys) -> SignatureVerifier {
        self.shared_keys = keys;
        self
    }

    /// Checks a form POST or GET signed with an auth token that applies to every account:
    /// `params` are the form parameters (empty for GET, whose parameters are in the query and
    /// so in `path_and_query`), in any order.
    ///
    /// # Errors
    /// A [`SignatureError`].
    pub fn verify(
        &self,
        path_and_query: &str,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        self.verify_request(Signed {
            path_and_query,
            params,
            signature,
            account_sid: None,
            settings: None,
        })
    }

    /// Checks one request: the secrets its account and signature settings call for, over
    /// both URL forms, in constant time for each.
    ///
    /// # Errors
    /// A [`SignatureError`] saying why.
    pub fn verify_request(&self, signed: Signed<'_>) -> Result<(), SignatureError> {
        let signature = signed.signature.ok_or(SignatureError::Missing)?;
        let settings = signed
            .settings
            .map(SignatureSettings::parse)
            .unwrap_or_default();
        let algorithm = match settings.algorithm {
            None => Algorithm::Sha1,
            Some(name) => Algorithm::parse(name).ok_or(SignatureError::UnsupportedAlgorithm)?,
        };
        let expected = STANDARD
            .decode(signature.trim())
            .map_err(|_| SignatureError::Mismatch)?;
        let params = canonical_params(signed.params);
        let matches = |secret: &Secret| {
            self.public_url.forms().iter().any(|origin| {
                mac_matches(
                    algorithm,
                    secret,
                    &[origin, signed.path_and_query],
                    &params,
                    &expected,
                )
            })
        };
        // Twilio's SharedKey scheme: the key the settings name, nothing else.
        if let (Some(key), Some(_)) = (settings.key, settings.algorithm) {
            let secret = self
                .shared_keys
                .0
                .get(key)
                .ok_or(SignatureError::UnknownKey)?;
            return if matches(secret) {
                Ok(())
            } else {
                Err(SignatureError::Mismatch)
            };
        }
        let account = signed.account_sid.unwrap_or("");
        let from_bucket = self
            .bucket
            .as_ref()
            .and_then(|bucket| bucket.tokens(account));
        let mut candidates = self
            .tokens
            .bound_to(account)
            .chain(from_bucket.iter().flat_map(|tokens| tokens.iter()))
            .chain(self.tokens.bare())
            .peekable();
        if candidates.peek().is_none() {
            return Err(SignatureError::UnknownAccount);
        }
        if candidates.any(matches) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Checks a JSON POST: the query carries `bodySHA256`, the hex SHA-256 of the raw body, and
    /// the signature covers the URL alone.
    ///
    /// # Errors
    /// [`SignatureError::BodyHashMismatch`] when the body's hash differs (checked after the
    /// signature, which covers the claimed hash), else as [`SignatureVerifier::verify_request`].
    pub fn verify_json(
        &self,
        signed: Signed<'_>,
        body_sha256: &str,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        self.verify_request(Signed {
            params: &[],
            ..signed
        })?;
        if body_sha256.eq_ignore_ascii_case(&hex::encode(Sha256::digest(body))) {
            Ok(())
        } else {
            Err(SignatureError::BodyHashMismatch)
        }
    }
}

/// Whether the HMAC of the URL parts and parameters under `secret` is `expected`, compared in
/// constant time.
fn mac_matches(
    algorithm: Algorithm,
    secret: &Secret,
    url_parts: &[&str],
    params: &[(&str, &str)],
    expected: &[u8],
) -> bool {
    match algorithm {
        Algorithm::Sha1 => signed_mac::<HmacSha1>(secret, url_parts, params)
            .verify_slice(expected)
            .is_ok(),
        Algorithm::Sha256 => signed_mac::<HmacSha256>(secret, url_parts, params)
            .verify_slice(expected)
            .is_ok(),
    }
}

/// Computes the signature Twilio would send for `url` and form `params`: the Base64 HMAC-SHA1.
pub fn sign(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    sign_with(Algorithm::Sha1, token, url, params)
}

/// Computes the signature for `url` and form `params` with `algorithm` (a shared key's).
pub fn sign_with(algorithm: Algorithm, secret: &str, url: &str, params: &[(&str, &str)]) -> String {
    let params = canonical_params(params);
    let secret = Secret::new(secret);
    match algorithm {
        Algorithm::Sha1 => STANDARD.encode(
            signed_mac::<HmacSha1>(&secret, &[url], &params)
                .finalize()
                .into_bytes(),
        ),
        Algorithm::Sha256 => STANDARD.encode(
            signed_mac::<HmacSha256>(&secret, &[url], &params)
                .finalize()
                .into_bytes(),
        ),
    }
}

/// Sorted by name, then value, in byte order, with exact repeats removed: the order Twilio
/// signs in (a repeated name's values de-duplicated and sorted).
fn canonical_params<'a>(params: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut sorted = params.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

fn signed_mac<M: Mac + hmac::digest::KeyInit>(
    token: &Secret,
    url_parts: &[&str],
    params: &[(&str, &str)],
) -> M {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(token.expose().as_bytes())
        .expect("HMAC takes a key of any size");
    for part in url_parts {
        mac.update(part.as_bytes());
    }
    for (name, value) in params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

#[cfg(test)]
mod tests;
