//! `X-Twilio-Webhooks-Signature-Settings` of any bytes: parsed without a panic, every value a
//! trimmed non-empty piece of the header, and a verification with it answers, never panics.
#![no_main]

use frontline_ingress::signature::{SignatureSettings, SignatureVerifier, Signed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let settings = SignatureSettings::parse(header);
    for value in [settings.key, settings.algorithm].into_iter().flatten() {
        assert!(!value.is_empty() && value == value.trim() && header.contains(value));
    }
    let verifier = SignatureVerifier::new(
        "token".parse().unwrap(),
        "https://hooks.example.com".parse().unwrap(),
    )
    .with_shared_keys("k1:secret".parse().unwrap());
    let _ = verifier.verify_request(Signed {
        path_and_query: "/webhooks/conversations",
        params: &[("EventType", "onMessageAdded")],
        signature: Some("AAAA"),
        account_sid: Some("AC00000000000000000000000000000001"),
        settings: Some(header),
    });
});
