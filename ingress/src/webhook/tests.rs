use super::*;
use crate::signature::sign;

const ORIGIN: &str = "https://hooks.example.com";
const PATH: &str = "/webhooks/conversations";

fn reader() -> WebhookReader {
    WebhookReader::new(Some(SignatureVerifier::new(
        "secret".parse().unwrap(),
        ORIGIN.parse().unwrap(),
    )))
}

fn pairs<'a>(list: &[(&'a str, &'a str)]) -> Vec<Pair<'a>> {
    list.iter()
        .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
        .collect()
}

fn form(list: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(list)
        .finish()
}

#[test]
fn content_types() {
    use BodyKind::*;
    let ok = [
        ("application/x-www-form-urlencoded", Form),
        ("application/x-www-form-urlencoded; charset=UTF-8", Form),
        ("Application/X-WWW-Form-Urlencoded;charset=utf-8", Form),
        ("application/json", Json),
        ("application/json; charset=utf-8", Json),
    ];
    for (value, kind) in ok {
        assert_eq!(
            BodyKind::from_content_type(Some(value)).unwrap(),
            kind,
            "{value}"
        );
    }
    for bad in [
        None,
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        Some(""),
    ] {
        let err = BodyKind::from_content_type(bad).unwrap_err();
        assert_eq!(
            err.status(),
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{bad:?}"
        );
    }
}

#[test]
fn verifies_a_signed_form_post() {
    let list = [
        ("EventType", "onMessageAdded"),
        ("ConversationSid", "CH1"),
        ("Body", "a+b & c"),
    ];
    let body = form(&list);
    let signature = sign("secret", &format!("{ORIGIN}{PATH}"), &list);
    let raw = RawRequest {
        path_and_query: PATH,
        body_kind: Some(BodyKind::Form),
        body: body.as_bytes(),
        signature: Some(&signature),
        signature_settings: None,
        idempotency_token: None,
    };
    let webhook = reader().read(raw).unwrap();
    assert_eq!(webhook.event_type(), Some("onMessageAdded"));
    assert_eq!(webhook.param("Body"), Some("a+b & c"));
    let tampered = body.replace("CH1", "CH2");
    let raw = RawRequest {
        body: tampered.as_bytes(),
        ..raw
    };
    assert_eq!(
        reader().read(raw).unwrap_err().status(),
        http::StatusCode::FORBIDDEN
    );
}

#[test]
fn verifies_a_signed_get() {
    let query = form(&[
        ("EventType", "onConversationAdd"),
        ("MessagingBinding.Address", "+1555"),
    ]);
    let path_and_query = format!("{PATH}?{query}");
    let signature = sign("secret", &format!("{ORIGIN}{path_and_query}"), &[]);
    let raw = RawRequest {
        path_and_query: &path_and_query,
        body_kind: None,
        body: b"",
        signature: Some(&signature),
        signature_settings: None,
        idempotency_token: Some(" tok-1 "),
    };
    let webhook = reader().read(raw).unwrap();
    assert_eq!(webhook.param("MessagingBinding.Address"), Some("+1555"));
    assert_eq!(webhook.idempotency_token(), Some("tok-1"));
    // The token is not signed: the id is the signed parameters' digest, never the token.
    let event_type = webhook.event_type().unwrap_or("");
    assert_eq!(
        webhook.dedupe_id(),
        params_digest(event_type, &webhook.params)
    );
    assert_ne!(webhook.dedupe_id(), "tok-1");
    let raw = RawRequest {
        signature: None,
        ..raw
    };
    assert_eq!(
        reader().read(raw).unwrap_err().status(),
        http::StatusCode::FORBIDDEN
    );
}

#[test]
fn verifies_a_json_body_by_its_hash() {
    let body = br#"{"EventType":"onMessageAdded","Index":3}"#;
    let hash = hex::encode(Sha256::digest(body));
    let path_and_query = format!("{PATH}?bodySHA256={hash}");
    let signature = sign("secret", &format!("{ORIGIN}{path_and_query}"), &[]);
    let raw = RawRequest {
        path_and_query: &path_and_query,
        body_kind: Some(BodyKind::Json),
        body,
        signature: Some(&signature),
        signature_settings: None,
        idempotency_token: None,
    };
    let webhook = reader().read(raw).unwrap();
    assert_eq!(webhook.event_type(), Some("onMessageAdded"));
    assert_eq!(webhook.param("Index"), Some("3"));
    assert_eq!(webhook.param("bodySHA256"), None);
    let raw = RawRequest {
        path_and_query: PATH,
        ..raw
    };
    assert_eq!(
        reader().read(raw).unwrap_err().status(),
        http::StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[test]
fn insecure_mode_skips_the_signature_only() {
    let body = form(&[("EventType", "onMessageAdded")]);
    let raw = RawRequest {
        path_and_query: PATH,
        body_kind: Some(BodyKind::Form),
        body: body.as_bytes(),
        signature: None,
        signature_settings: None,
        idempotency_token: None,
    };
    assert_eq!(
        WebhookReader::new(None).read(raw).unwrap().event_type(),
        Some("onMessageAdded")
    );
}

#[test]
fn dedupe_id_ignores_order_and_retry_count() {
    let a = params_digest(
        "onMessageAdded",
        &pairs(&[("A", "1"), ("B", "2"), ("RetryCount", "0")]),
    );
    let b = params_digest(
        "onMessageAdded",
        &pairs(&[("RetryCount", "1"), ("B", "2"), ("A", "1")]),
    );
    assert_eq!(a, b);
    assert_eq!(a.len(), 64);
    let c = params_digest("onMessageAdded", &pairs(&[("A", "1"), ("B", "3")]));
    assert_ne!(a, c);
    let d = params_digest("onMessageUpdated", &pairs(&[("A", "1"), ("B", "2")]));
    assert_ne!(a, d);
    // Concatenation ambiguity: "A"+"12" differs from "A1"+"2".
    assert_ne!(
        params_digest("e", &pairs(&[("A", "12")])),
        params_digest("e", &pairs(&[("A1", "2")]))
    );
}

#[test]
fn envelope_keeps_every_parameter() {
    let webhook = Webhook::new(
        pairs(&[
            ("EventType", "onConversationAdd"),
            ("AccountSid", "AC1"),
            ("MessagingBinding.Address", "+1"),
            ("MessagingBinding.Address", "+2"),
        ]),
        Some("idem"),
    );
    let envelope =
        frontline_shared::Envelope::from_slice(&webhook.envelope_json("2026-11-25T10:00:00.000Z"))
            .unwrap();
    assert_eq!(envelope.event_type, "onConversationAdd");
    assert_eq!(envelope.account_sid.as_deref(), Some("AC1"));
    assert_eq!(envelope.idempotency_token.as_deref(), Some("idem"));
    assert_eq!(
        envelope
            .params
            .get_all("MessagingBinding.Address")
            .collect::<Vec<_>>(),
        ["+1", "+2"]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn any_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec((".{0,12}", ".{0,24}"), 0..20)
    }

    proptest! {
        /// Read off the canonical order, the envelope is byte for byte the one the contract
        /// encodes from the parameters as sent, and the dedupe id the digest of them: with
        /// repeated names, exact repeats and neither.
        #[test]
        fn canonical_order_gives_the_contract_bytes(
            sent in proptest::collection::vec(("[AB]{1,2}|[a-z]{1,8}", "[xy]{0,2}"), 0..16),
            token in proptest::option::of("[a-z0-9]{1,8}"),
        ) {
            let list: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let webhook = Webhook::new(pairs(&list), token.as_deref());
            let reference = frontline_shared::EnvelopeRef {
                event_type: "",
                account_sid: webhook.account_sid(),
                received_at: "t",
                idempotency_token: webhook.idempotency_token(),
                // As sent, each exact repeat kept once (the rule `Webhook::new` applies).
                params: &webhook.params,
            };
            prop_assert_eq!(webhook.envelope_json("t"), reference.to_vec());
            prop_assert_eq!(webhook.dedupe_id(), params_digest("", &list));
        }

        /// Any bytes as a form body: parsed without panic, and the verdict is a 403, never a crash.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), query in ".{0,64}") {
            let path_and_query = format!("{PATH}?{query}");
            for body_kind in [Some(BodyKind::Form), Some(BodyKind::Json), None] {
                let raw = RawRequest {
                    path_and_query: &path_and_query,
                    body_kind,
                    body: &body,
                    signature: Some("AAAA"),
                    signature_settings: None,
                    idempotency_token: None,
                };
                if let Err(rejection) = reader().read(raw) {
                    prop_assert!(rejection.status().is_client_error());
                }
            }
        }

        /// Whatever Twilio sends, signing and verifying agree: encode, sign, parse, verify.
        #[test]
        fn signed_forms_round_trip(pairs in any_pairs()) {
            let list: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let body = form(&list);
            let signature = sign("secret", &format!("{ORIGIN}{PATH}"), &list);
            let raw = RawRequest {
                path_and_query: PATH,
                body_kind: Some(BodyKind::Form),
                body: body.as_bytes(),
                signature: Some(&signature),
                signature_settings: None,
                idempotency_token: None,
            };
            let webhook = reader().read(raw).expect("a correctly signed form verifies");
            // Parsing gives back the pairs sent, in order, an exact repeat of a pair kept once.
            let mut expected: Vec<(String, String)> = Vec::new();
            for pair in &pairs {
                if !expected.contains(pair) {
                    expected.push(pair.clone());
                }
            }
            let parsed: Vec<(String, String)> = webhook.params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            prop_assert_eq!(&parsed, &expected);
            // The envelope keeps every name, each value in order.
            let envelope = frontline_shared::Envelope::from_slice(&webhook.envelope_json("")).unwrap();
            for (name, _) in &expected {
                let sent: Vec<&str> = expected.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect();
                prop_assert_eq!(envelope.params.get_all(name).collect::<Vec<_>>(), sent);
            }
        }

        /// The dedupe id is a function of the set of signed parameters: any order of the same
        /// parameters gives the same id.
        #[test]
        fn dedupe_id_is_the_same_for_every_order(
            (pairs, shuffled) in any_pairs().prop_flat_map(|pairs| (Just(pairs.clone()), Just(pairs).prop_shuffle()))
        ) {
            prop_assert_eq!(
                params_digest("onMessageAdded", &shuffled),
                params_digest("onMessageAdded", &pairs)
            );
        }

        /// Any change of one signed parameter's value or name, or of the event type, gives a
        /// different id (`RetryCount` aside, which Twilio changes on its retries).
        #[test]
        fn dedupe_id_changes_with_any_signed_value(
            pairs in proptest::collection::btree_set(("[A-Za-z.]{1,12}", ".{0,24}"), 1..12),
            which in any::<proptest::sample::Index>(),
            in_name in any::<bool>(),
            extra in "[a-z0-9]{1,4}",
        ) {
            let pairs: Vec<(String, String)> = pairs.into_iter().filter(|(name, _)| name != "RetryCount").collect();
            prop_assume!(!pairs.is_empty());
            let original = params_digest("onMessageAdded", &pairs);
            let mut changed = pairs.clone();
            let (name, value) = &mut changed[which.index(pairs.len())];
            if in_name {
                name.push_str(&extra);
                prop_assume!(name != "RetryCount");
            } else {
                value.push_str(&extra);
            }
            prop_assert_ne!(params_digest("onMessageAdded", &changed), original.clone());
            prop_assert_ne!(params_digest("onMessageUpdated", &pairs), original);
        }
    }
}
