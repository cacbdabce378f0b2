//! The per-request work of the ingress, without the network: signature verification of a
//! 15-parameter webhook, parsing plus verification, and envelope encoding.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use frontline_ingress::signature::{SignatureVerifier, sign};
use frontline_ingress::webhook::{BodyKind, RawRequest, WebhookReader};

const ORIGIN: &str = "https://hooks.example.com";
const PATH: &str = "/webhooks/conversations";

/// A realistic onParticipantAdded: 15 parameters.
fn params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("EventType", "onParticipantAdded"),
        ("Source", "SMS"),
        ("RetryCount", "0"),
        ("ConversationSid", "CH00000000000000000000000000000042"),
        ("ParticipantSid", "MB00000000000000000000000000000007"),
        ("ChatServiceSid", "IS00000000000000000000000000000001"),
        ("MessagingServiceSid", "MG00000000000000000000000000000001"),
        ("MessagingBinding.ProxyAddress", "+18005550100"),
        ("MessagingBinding.Address", "+14155550101"),
        ("MessagingBinding.Type", "SMS"),
        ("Attributes", "{}"),
        ("RoleSid", "RL00000000000000000000000000000001"),
        ("DateCreated", "2026-11-25T10:00:00Z"),
        ("Identity", ""),
    ]
}

fn benches(c: &mut Criterion) {
    let params = params();
    let signature = sign("token", &format!("{ORIGIN}{PATH}"), &params);
    let verifier = SignatureVerifier::new("token".parse().unwrap(), ORIGIN.parse().unwrap());
    c.bench_function("signature_verify_15_params", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(PATH), black_box(&params), Some(&signature))
                .unwrap()
        })
    });

    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let webhooks = WebhookReader::new(Some(verifier.clone()));
    let raw = RawRequest {
        path_and_query: PATH,
        body_kind: Some(BodyKind::Form),
        body: body.as_bytes(),
        signature: Some(&signature),
        signature_settings: None,
        idempotency_token: None,
    };
    c.bench_function("parse_and_verify_15_params", |b| {
        b.iter(|| webhooks.read(black_box(raw)).unwrap())
    });

    let webhook = webhooks.read(raw).unwrap();
    c.bench_function("envelope_encode_15_params", |b| {
        b.iter(|| black_box(&webhook).envelope_json("2026-11-25T10:00:00.000Z"))
    });
    c.bench_function("dedupe_id_15_params", |b| {
        b.iter(|| black_box(&webhook).dedupe_id().len())
    });
}

criterion_group!(hot_paths, benches);
criterion_main!(hot_paths);
