//! From a raw HTTP request to a verified [`Webhook`]: content type, parameters (form body,
//! query, or JSON body with `bodySHA256`), and the signature. A `Webhook` can only be built by
//! [`WebhookReader::read`], so the code that talks to NATS only ever sees verified input. The
//! cryptography itself is [`crate::signature`]'s; this module decides what is signed.

use std::borrow::Cow;

use frontline_shared::EnvelopeRef;
use sha2::{Digest, Sha256};

use crate::error::Rejection;
use crate::signature::{SignatureVerifier, Signed};

/// The parameter Twilio increments on its retries; left out of the de-duplication id.
const RETRY_COUNT: &str = "RetryCount";
/// The parameter naming the account, which picks its tokens.
const ACCOUNT_SID: &str = "AccountSid";
/// The query parameter of the JSON-body signature variant.
const BODY_SHA256: &str = "bodySHA256";

/// How a POST body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded`: the parameters are the body.
    Form,
    /// `application/json`: signed through `bodySHA256` in the query.
    Json,
}

impl BodyKind {
    /// The body kind of a POST's `Content-Type` (any parameters such as `charset` allowed).
    ///
    /// # Errors
    /// [`Rejection::UnsupportedMediaType`] for anything else, or a missing header.
    pub fn from_content_type(content_type: Option<&str>) -> Result<BodyKind, Rejection> {
        let essence = content_type.map_or("", |value| value.split(';').next().unwrap_or("").trim());
        if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Ok(BodyKind::Form)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Ok(BodyKind::Json)
        } else {
            // Logged with the rejection: never more of it than a log line may carry.
            Err(Rejection::UnsupportedMediaType(
                frontline_runtime::telemetry::cut(essence).to_owned(),
            ))
        }
    }
}

/// A webhook request as it arrived, before any check.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// The raw path and query, exactly as requested.
    pub path_and_query: &'a str,
    /// For POST: the body's kind.
    pub body_kind: Option<BodyKind>,
    /// The raw body.
    pub body: &'a [u8],
    /// `X-Twilio-Signature`.
    pub signature: Option<&'a str>,
    /// `X-Twilio-Webhooks-Signature-Settings` (Twilio's SharedKey scheme).
    pub signature_settings: Option<&'a str>,
    /// `I-Twilio-Idempotency-Token`.
    pub idempotency_token: Option<&'a str>,
}

/// A webhook whose signature was verified (or explicitly not checked). Its parameters borrow
/// from the request where no decoding was needed.
#[derive(Debug, Clone)]
pub struct Webhook<'a> {
    params: Vec<Pair<'a>>,
    /// Indices into `params` by name, then value: the order Twilio signs in, which the dedupe
    /// digest and the envelope read too, so the parameters are sorted once per request.
    canonical: Vec<u32>,
    idempotency_token: Option<&'a str>,
}

/// One parameter: name and value, percent-decoded.
type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Reads raw requests into verified webhooks: parses the parameters, then has the
/// [`SignatureVerifier`] check them. With no signature verifier it is the explicit insecure mode.
#[derive(Debug, Clone)]
pub struct WebhookReader {
    signature: Option<SignatureVerifier>,
}

impl WebhookReader {
    /// `None` skips signature checks (`INSECURE_SKIP_SIGNATURE=true`).
    pub fn new(signature: Option<SignatureVerifier>) -> WebhookReader {
        WebhookReader { signature }
    }

    /// Parses the parameters and checks the signature.
    ///
    /// # Errors
    /// 403-class rejections for a missing or wrong signature, 400 for an unreadable JSON body,
    /// 415 for a JSON body without `bodySHA256`.
    pub fn read<'a>(&self, raw: RawRequest<'a>) -> Result<Webhook<'a>, Rejection> {
        let query = raw
            .path_and_query
            .split_once('?')
            .map_or("", |(_, query)| query);
        let params = match raw.body_kind {
            None => pairs(query.as_bytes()),
            Some(BodyKind::Form) => pairs(raw.body),
            Some(BodyKind::Json) => return self.read_json(raw, query),
        };
        // Exact repeats go before the check: Twilio signs each pair once either way.
        let webhook = Webhook::new(params, raw.idempotency_token);
        if let Some(verifier) = &self.signature {
            let signed: Vec<(&str, &str)> = match raw.body_kind {
                // GET parameters are signed as part of the URL.
                None => Vec::new(),
                Some(_) => webhook.canonical().collect(),
            };
            verifier.verify_request(Signed {
                path_and_query: raw.path_and_query,
                params: &signed,
                signature: raw.signature,
                account_sid: webhook.param(ACCOUNT_SID),
                settings: raw.signature_settings,
            })?;
        }
        Ok(webhook)
    }

    fn read_json<'a>(&self, raw: RawRequest<'a>, query: &'a str) -> Result<Webhook<'a>, Rejection> {
        let mut params = pairs(query.as_bytes());
        let hash_at = params
            .iter()
            .position(|(name, _)| name == BODY_SHA256)
            .ok_or_else(|| {
                Rejection::UnsupportedMediaType("application/json without bodySHA256".into())
            })?;
        let (_, body_sha256) = params.remove(hash_at);
        let body = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(raw.body);
        if let Some(verifier) = &self.signature {
            let account_sid = body
                .as_ref()
                .ok()
                .and_then(|body| body.get(ACCOUNT_SID))
                .and_then(serde_json::Value::as_str);
            let signed = Signed {
                path_and_query: raw.path_and_query,
                params: &[],
                signature: raw.signature,
                account_sid,
                settings: raw.signature_settings,
            };
            verifier.verify_json(signed, &body_sha256, raw.body)?;
        }
        let body = body.map_err(|_| Rejection::BadRequest("the JSON body is not an object"))?;
        params.extend(body.into_iter().map(|(name, value)| match value {
            serde_json::Value::String(text) => (Cow::Owned(name), Cow::Owned(text)),
            other => (Cow::Owned(name), Cow::Owned(other.to_string())),
        }));
        Ok(Webhook::new(params, raw.idempotency_token))
    }
}

/// The decoded pairs of a form or query; borrowed from `encoded` unless decoding changed them.
fn pairs(encoded: &[u8]) -> Vec<Pair<'_>> {
    form_urlencoded::parse(encoded).collect()
}

impl<'a> Webhook<'a> {
    /// A verified webhook. Exact repeats of a parameter (same name, same value) are kept once:
    /// Twilio signs them once, so a copy appended to a signed form would otherwise change what
    /// is stored without touching the signature. Twilio's idempotency token, which the signature
    /// does not cover, is kept only when it looks like one (`[A-Za-z0-9_-]{1,64}`).
    fn new(mut params: Vec<Pair<'a>>, idempotency_token: Option<&'a str>) -> Webhook<'a> {
        let canonical = collapse_exact_repeats(&mut params);
        let idempotency_token = idempotency_token
            .map(str::trim)
            .filter(|token| frontline_shared::subject::is_token(token));
        Webhook {
            params,
            canonical,
            idempotency_token,
        }
    }

    /// The parameters by name, then value, each pair once: what Twilio signs.
    pub fn canonical(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.canonical.iter().map(|&index| {
            let (name, value) = &self.params[index as usize];
            (name.as_ref(), value.as_ref())
        })
    }

    /// The first value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// `EventType`, when present and not empty.
    pub fn event_type(&self) -> Option<&str> {
        self.param("EventType").filter(|v| !v.is_empty())
    }

    /// `ConversationSid`, when present and not empty.
    pub fn conversation_sid(&self) -> Option<&str> {
        self.param("ConversationSid").filter(|v| !v.is_empty())
    }

    /// `AccountSid`, when present and not empty.
    pub fn account_sid(&self) -> Option<&str> {
        self.param("AccountSid").filter(|v| !v.is_empty())
    }

    /// Twilio's idempotency token, when it sent one.
    pub fn idempotency_token(&self) -> Option<&str> {
        self.idempotency_token
    }

    /// JetStream's `Nats-Msg-Id`, and the answer cache's key: a digest of what Twilio signed
    /// (the event type and the sorted parameters without `RetryCount`), so a retry is stored
    /// once and nothing unsigned (the idempotency token, say) decides what is stored.
    pub fn dedupe_id(&self) -> String {
        canonical_digest(self.event_type().unwrap_or(""), self.canonical())
    }

    /// The envelope's JSON for NATS, stamped with `received_at`.
    pub fn envelope_json(&self, received_at: &str) -> Vec<u8> {
        self.envelope_json_as(self.event_type().unwrap_or(""), received_at)
    }

    /// The envelope's JSON with `event_type` in its `event_type` field (a callback's
    /// `Location`, which carries no `EventType`).
    pub fn envelope_json_as(&self, event_type: &str, received_at: &str) -> Vec<u8> {
        let by_name: Vec<(&str, &str)> = self.canonical().collect();
        let envelope = EnvelopeRef {
            event_type,
            account_sid: self.account_sid(),
            received_at,
            idempotency_token: self.idempotency_token,
            params: &by_name[..],
        };
        // With no name repeated, the canonical order is the envelope's (by name); a repeated
        // name keeps its values in the order sent, which only a stable sort of them gives.
        if by_name.windows(2).all(|pair| pair[0].0 != pair[1].0) {
            envelope.to_vec_sorted()
        } else {
            envelope.to_vec_with(&self.params)
        }
    }
}

/// Drops every exact repeat of a `(name, value)` pair after its first, keeping the order, and
/// returns the indices of what is left sorted by name, then value (the canonical order). Sorted,
/// exact repeats sit side by side, so finding them costs no search of its own.
fn collapse_exact_repeats(params: &mut Vec<Pair<'_>>) -> Vec<u32> {
    // Bodies are bounded far below 2^32 parameters. Of equal pairs, the first sent sorts first
    // (the position breaks the tie, which only exact repeats reach).
    let mut sorted: Vec<u32> = (0..params.len() as u32).collect();
    sorted.sort_unstable_by(|a, b| params[*a as usize].cmp(&params[*b as usize]).then(a.cmp(b)));
    let same = |pair: &[u32]| params[pair[0] as usize] == params[pair[1] as usize];
    // Most forms have none: nothing more to do.
    if !sorted.windows(2).any(same) {
        return sorted;
    }
    let mut repeat = vec![false; params.len()];
    for pair in sorted.windows(2).filter(|pair| same(pair)) {
        repeat[pair[1] as usize] = true;
    }
    // Where each kept pair lands once the repeats before it are gone.
    let mut moved_to = Vec::with_capacity(params.len());
    let mut kept = 0;
    for &dropped in &repeat {
        moved_to.push(kept);
        kept += u32::from(!dropped);
    }
    let mut index = 0;
    params.retain(|_| {
        index += 1;
        !repeat[index - 1]
    });
    sorted
        .into_iter()
        .filter(|&i| !repeat[i as usize])
        .map(|i| moved_to[i as usize])
        .collect()
}

/// Hex SHA-256 over the event type and the sorted name/value pairs (NUL-separated, so no two
/// parameter sets share an encoding), `RetryCount` left out, exact repeats counted once.
pub fn params_digest<K: AsRef<str>, V: AsRef<str>>(event_type: &str, params: &[(K, V)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_ref(), value.as_ref()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    canonical_digest(event_type, sorted.into_iter())
}

/// [`params_digest`] of parameters already in canonical order (by name, then value, each pair
/// once).
fn canonical_digest<'p>(
    event_type: &str,
    canonical: impl Iterator<Item = (&'p str, &'p str)>,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(event_type.as_bytes());
    for (name, value) in canonical.filter(|(name, _)| *name != RETRY_COUNT) {
        hasher.update([0]);
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests;
