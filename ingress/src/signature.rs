//! Twilio's `X-Twilio-Signature`, as a pure module: no I/O, no clock.
//!
//! The signed string is the URL Twilio requested (the configured public origin followed by the
//! raw path and query) and, for a form POST, every parameter name directly followed by its
//! value, sorted by name in byte order, a repeated name's values de-duplicated and sorted. The
//! signature is the Base64 HMAC-SHA1 of that string keyed by the auth token. Like Twilio's own
//! validators we accept it over either port form of the URL (without the port, or with the
//! scheme's default port added), and we check every configured token so tokens can be rotated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use frontline_runtime::secret::{Secret, Tokens};

type HmacSha1 = Hmac<Sha1>;

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
    /// The header matched no token over either URL form.
    #[error("X-Twilio-Signature does not match")]
    Mismatch,
    /// `bodySHA256` in the query does not match the body.
    #[error("bodySHA256 does not match the body")]
    BodyHashMismatch,
}

/// Checks signatures against the configured tokens and origin.
#[derive(Debug, Clone)]
pub struct SignatureVerifier {
    tokens: Tokens,
    public_url: PublicUrl,
}

impl SignatureVerifier {
    /// A verifier for these tokens (one or more) and origin.
    pub fn new(tokens: Tokens, public_url: PublicUrl) -> SignatureVerifier {
        SignatureVerifier { tokens, public_url }
    }

    /// Checks a form POST or GET: `params` are the form parameters (empty for GET, whose
    /// parameters are in the query and so in `path_and_query`), in any order.
    ///
    /// # Errors
    /// [`SignatureError::Missing`] or [`SignatureError::Mismatch`].
    pub fn verify(
        &self,
        path_and_query: &str,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing)?;
        let expected = STANDARD
            .decode(signature.trim())
            .map_err(|_| SignatureError::Mismatch)?;
        let params = canonical_params(params);
        for token in self.tokens.iter() {
            for origin in self.public_url.forms() {
                let mac = signed_mac(token, &[origin, path_and_query], &params);
                if mac.verify_slice(&expected).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(SignatureError::Mismatch)
    }

    /// Checks a JSON POST: the query carries `bodySHA256`, the hex SHA-256 of the raw body, and
    /// the signature covers the URL alone.
    ///
    /// # Errors
    /// [`SignatureError::BodyHashMismatch`] when the body's hash differs (checked after the
    /// signature, which covers the claimed hash), else as [`SignatureVerifier::verify`].
    pub fn verify_json(
        &self,
        path_and_query: &str,
        body_sha256: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        self.verify(path_and_query, &[], signature)?;
        if body_sha256.eq_ignore_ascii_case(&hex::encode(Sha256::digest(body))) {
            Ok(())
        } else {
            Err(SignatureError::BodyHashMismatch)
        }
    }
}

/// Computes the signature Twilio would send for `url` and form `params`: the Base64 HMAC-SHA1.
pub fn sign(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let params = canonical_params(params);
    let mac = signed_mac(&Secret::new(token), &[url], &params);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Sorted by name, then value, in byte order, with exact repeats removed: the order Twilio
/// signs in (a repeated name's values de-duplicated and sorted).
fn canonical_params<'a>(params: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut sorted = params.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

fn signed_mac(token: &Secret, url_parts: &[&str], params: &[(&str, &str)]) -> HmacSha1 {
    let mut mac =
        HmacSha1::new_from_slice(token.expose().as_bytes()).expect("HMAC takes a key of any size");
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
