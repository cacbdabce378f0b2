//! Form parsing, signature canonicalisation and verification, and envelope building on arbitrary
//! bodies and queries: never a panic.
#![no_main]

use frontline_ingress::signature::SignatureVerifier;
use frontline_ingress::webhook::{BodyKind, RawRequest, WebhookReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (query, body) = data.split_at(data.len().min(data.first().copied().unwrap_or(0) as usize));
    let path_and_query = format!("/webhooks/conversations?{}", String::from_utf8_lossy(query));
    let signed = WebhookReader::new(Some(SignatureVerifier::new(
        "token".parse().unwrap(),
        "https://hooks.example.com".parse().unwrap(),
    )));
    let unsigned = WebhookReader::new(None);
    for body_kind in [Some(BodyKind::Form), Some(BodyKind::Json), None] {
        let raw = RawRequest {
            path_and_query: &path_and_query,
            body_kind,
            body,
            signature: Some("AAAA"),
            signature_settings: None,
            idempotency_token: None,
        };
        let _ = signed.read(raw);
        if let Ok(webhook) = unsigned.read(raw) {
            let _ = webhook.dedupe_id();
            let _ = frontline_shared::Envelope::from_slice(&webhook.envelope_json("")).expect("an envelope round-trips");
        }
    }
});
