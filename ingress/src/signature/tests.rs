//! The golden vectors of Twilio's SDK test suites, and the negative cases.

use super::*;

const TOKEN: &str = "12345";
const U: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const PQ: &str = "/myapp.php?foo=1&bar=2";
const P: [(&str, &str); 5] = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
];

/// A golden vector: the URL signed, the parameters, the expected signature.
type Vector<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

fn verifier(origin: &str) -> SignatureVerifier {
    SignatureVerifier::new(TOKEN.parse().unwrap(), origin.parse().unwrap())
}

/// The vectors of `twilio-webhooks.md`, from the SDKs' own test suites, except the
/// `http://…:80` one, which no public SDK suite holds and which we computed ourselves. Every one of
/// them was recomputed with an implementation independent of this crate (Python's standard
/// `hmac`, `hashlib` and `base64` modules: the URL, then the de-duplicated `(name, value)` pairs
/// sorted and concatenated, HMAC-SHA1 keyed by `12345`) and matched.
#[test]
fn signs_the_golden_vectors() {
    let cases: &[Vector] = &[
        (U, &P, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &P,
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        ),
        (
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &P,
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
        ),
        (
            "http://mycompany.com:80/myapp.php?foo=1&bar=2",
            &P,
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
        ),
        (
            U,
            &[
                ("Sid", "CA123"),
                ("SidAccount", "AC123"),
                ("Digits", "5678"),
                ("Digits", "1234"),
                ("Digits", "1234"),
            ],
            "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        ),
        (
            U,
            &[
                ("MessagingBinding.Address", "+1325xxxxxxx"),
                ("MessagingBinding.Address", "+1415xxxxxxx"),
            ],
            "83O6e2vORAoJHUNzJjDWN1jz+BA=",
        ),
        (
            U,
            &[
                ("MessagingBinding.Address", "+1415xxxxxxx"),
                ("MessagingBinding.Address", "+1325xxxxxxx"),
            ],
            "83O6e2vORAoJHUNzJjDWN1jz+BA=",
        ),
        (U, &[], "zYQTYrRWXE7LtzbG4PfP7/bkkGo="),
        (
            "https://mycompany.com/myapp.php",
            &P,
            "1xaxFBvyzXYvWplzNOSs28HWO94=",
        ),
        (
            "https://mycompany.com/myapp.php?foo=hello%20world&bar=test%2Bvalue",
            &P,
            "er2tvAP1Wx+iuTTE2BPgvEaN1cs=",
        ),
        (
            U,
            &[
                ("Message", "Hello & goodbye! @#$%^*()"),
                ("From", "+1 (415) 867-5309"),
                ("Special", "unicode: ñáéíóú"),
            ],
            "dCPiR4WtQ6QFN6pJh81CtlCcWLQ=",
        ),
        (
            U,
            &[
                ("Digits", ""),
                ("CallSid", "CA1234567890ABCDE"),
                ("EmptyParam", ""),
            ],
            "9HHp/OqQMEwdrVebHDdA/+tqjX8=",
        ),
        (
            U,
            &[
                ("Zebra", "last"),
                ("Alpha", "first"),
                ("Beta", "second"),
                ("Gamma", "third"),
            ],
            "enveUe73ZTVLAekHxez3Qx6JuuQ=",
        ),
        (
            U,
            &[
                ("callSid", "lowercase"),
                ("CallSid", "uppercase"),
                ("CALLSID", "allcaps"),
            ],
            "jDK7WKT8wiNrwggd4ceTv4e1MJ4=",
        ),
        (
            "https://mycompany.com/webhook/España?año=2023",
            &P,
            "G/Hx6mqqnjUNlPAoi2Sp9bGst0g=",
        ),
        (
            "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620",
            &[],
            "a9nBmqA0ju/hNViExpshrM61xv4=",
        ),
    ];
    for (url, params, expected) in cases {
        assert_eq!(sign(TOKEN, url, params), *expected, "{url} {params:?}");
    }
    let docs = [
        ("Digits", "1234"),
        ("To", "+18005551212"),
        ("From", "+14158675310"),
        ("Caller", "+14158675310"),
        ("CallSid", "CA1234567890ABCDE"),
    ];
    assert_eq!(
        sign(TOKEN, "https://example.com/myapp.php?foo=1&bar=2", &docs),
        "L/OH5YylLD5NRKLltdqwSvS0BnU="
    );
}

#[test]
fn verifies_the_golden_vectors_through_the_public_url() {
    let v = verifier("https://mycompany.com");
    assert_eq!(
        v.verify(PQ, &P, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
        Ok(())
    );
    // Twilio signed with the default port added; the request URL had none.
    assert_eq!(
        v.verify(PQ, &P, Some("kvajT1Ptam85bY51eRf/AJRuM3w=")),
        Ok(())
    );
    assert_eq!(
        v.verify("/myapp.php", &P, Some("1xaxFBvyzXYvWplzNOSs28HWO94=")),
        Ok(())
    );
    assert_eq!(
        v.verify(
            "/webhook/España?año=2023",
            &P,
            Some("G/Hx6mqqnjUNlPAoi2Sp9bGst0g=")
        ),
        Ok(())
    );
    let v = verifier("http://mycompany.com");
    assert_eq!(
        v.verify(PQ, &P, Some("0ZXoZLH/DfblKGATFgpif+LLRf4=")),
        Ok(())
    );
}

#[test]
fn accepts_both_port_forms_of_a_url_with_a_port() {
    // The request URL has :1234; Twilio's validators accept a signature without the port.
    let v = verifier("https://mycompany.com:1234");
    assert_eq!(
        v.verify(PQ, &P, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
        Ok(())
    );
    let v = verifier("http://mycompany.com:1234/");
    assert_eq!(
        v.verify(PQ, &P, Some("Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")),
        Ok(())
    );
}

#[test]
fn rejects_wrong_empty_and_missing_signatures() {
    let v = verifier("https://mycompany.com");
    for bad in [
        "WRONG_SIGNATURE",
        "",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8",
        "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
    ] {
        assert_eq!(
            v.verify(PQ, &P, Some(bad)),
            Err(SignatureError::Mismatch),
            "{bad:?}"
        );
    }
    assert_eq!(v.verify(PQ, &P, None), Err(SignatureError::Missing));
    // A changed value, an added parameter, another path: all mismatches.
    let mut changed = P;
    changed[2] = ("Digits", "1235");
    assert_eq!(
        v.verify(PQ, &changed, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
        Err(SignatureError::Mismatch)
    );
    let mut added = P.to_vec();
    added.push(("Extra", "1"));
    assert_eq!(
        v.verify(PQ, &added, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        v.verify(
            "/myapp.php?foo=1&bar=3",
            &P,
            Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")
        ),
        Err(SignatureError::Mismatch)
    );
    // Another host.
    let other = verifier("https://evil.example.com");
    assert_eq!(
        other.verify(PQ, &P, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn accepts_any_configured_token() {
    let rotated = SignatureVerifier::new(
        "old-token,12345".parse().unwrap(),
        "https://mycompany.com".parse().unwrap(),
    );
    assert_eq!(
        rotated.verify(PQ, &P, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
        Ok(())
    );
    let gone = SignatureVerifier::new(
        "old-token".parse().unwrap(),
        "https://mycompany.com".parse().unwrap(),
    );
    assert_eq!(
        gone.verify(PQ, &P, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
        Err(SignatureError::Mismatch)
    );
}

fn signed<'a>(pq: &'a str, signature: Option<&'a str>) -> Signed<'a> {
    Signed {
        path_and_query: pq,
        params: &[],
        signature,
        account_sid: None,
        settings: None,
    }
}

#[test]
fn verifies_json_bodies_by_hash() {
    let v = verifier("https://mycompany.com");
    let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    let pq = format!("{PQ}&bodySHA256={hash}");
    let body = br#"{"property": "value", "boolean": true}"#;
    let signature = Some("a9nBmqA0ju/hNViExpshrM61xv4=");
    assert_eq!(v.verify_json(signed(&pq, signature), hash, body), Ok(()));
    assert_eq!(
        v.verify_json(
            signed(&pq, signature),
            hash,
            br#"{"property": "other", "boolean": true}"#,
        ),
        Err(SignatureError::BodyHashMismatch)
    );
    assert_eq!(
        v.verify_json(signed(&pq, Some("WRONG")), hash, body),
        Err(SignatureError::Mismatch)
    );
}

/// HMAC-SHA256 vectors, computed with Twilio's official Node SDK (npm `twilio` 6.3.1):
/// `require('twilio/lib/webhooks/webhooks').getExpectedTwilioSignature(secret, url, params,
/// "HMAC_SHA256")`, with `url` = `U` (or its `:443` form, or `U&bodySHA256=...`) and `params` =
/// `P` (or `{}`), and the results written here as literals.
const SHARED_SECRET: &str = "shared-key-secret-0001";
const SHA256_U_P: &str = "VtbGe89Ei7OIfHE+Mn2tynVSkuy6tQI1HI4ivgbbmO8=";
const SHA256_U_P_TOKEN_12345: &str = "033hgUJA9M/hXIZsYjwkerEP/DBm35nEri5FhCYjA5s=";
const SHA256_U_NONE: &str = "DL7uwKYj40/ECO5ARxGesakblmgzF0CC3SVPs1CyVbU=";
const SHA256_PORT_443_P: &str = "Ok65Fo16ICIG/bVmToRzfVuqwIk6ZllUxdEMeAIjNFU=";
const SHA256_BODY: &str = "+y3eUcPSkm6ealQbnhfv9ZZdfz41Li9ISyieyGtPD+8=";
/// The same SDK with `"hmac_sha1"` (any case) and the shared secret.
const SHA1_U_P_SHARED: &str = "9bsY9T7OrKRIFWG0Mau9xcoKDfA=";

#[test]
fn signs_the_sdk_s_hmac_sha256_vectors() {
    assert_eq!(
        sign_with(Algorithm::Sha256, SHARED_SECRET, U, &P),
        SHA256_U_P
    );
    assert_eq!(
        sign_with(Algorithm::Sha256, "12345", U, &P),
        SHA256_U_P_TOKEN_12345
    );
    assert_eq!(
        sign_with(Algorithm::Sha256, SHARED_SECRET, U, &[]),
        SHA256_U_NONE
    );
    assert_eq!(
        sign_with(
            Algorithm::Sha256,
            SHARED_SECRET,
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &P
        ),
        SHA256_PORT_443_P
    );
    assert_eq!(
        sign_with(Algorithm::Sha1, SHARED_SECRET, U, &P),
        SHA1_U_P_SHARED
    );
}

fn shared(keys: &str) -> SignatureVerifier {
    SignatureVerifier::new(Tokens::default(), "https://mycompany.com".parse().unwrap())
        .with_shared_keys(keys.parse().unwrap())
}

fn with_settings<'a>(
    params: &'a [(&'a str, &'a str)],
    signature: &'a str,
    settings: Option<&'a str>,
) -> Signed<'a> {
    Signed {
        path_and_query: PQ,
        params,
        signature: Some(signature),
        account_sid: None,
        settings,
    }
}

#[test]
fn a_shared_key_verifies_with_the_algorithm_it_names() {
    let v = shared(&format!("ks_old:{SHARED_SECRET},ks_new:another-secret"));
    let sha256 = "key=ks_old,algorithm=HMAC_SHA256";
    assert_eq!(
        v.verify_request(with_settings(&P, SHA256_U_P, Some(sha256))),
        Ok(())
    );
    // Both port forms, as for auth tokens.
    assert_eq!(
        v.verify_request(with_settings(&P, SHA256_PORT_443_P, Some(sha256))),
        Ok(())
    );
    // Spaces, case of the algorithm, order of the parts: as Twilio's validator reads them.
    for header in [
        " algorithm = hmac_sha256 , key = ks_old ",
        "key=ks_old,algorithm=HMAC_SHA256,algorithm=HMAC_SHA1",
        "algorithm=,key=ks_old,algorithm=HMAC_SHA256",
        "key=ks_old,extra,algorithm=HMAC_SHA256",
    ] {
        assert_eq!(
            v.verify_request(with_settings(&P, SHA256_U_P, Some(header))),
            Ok(()),
            "{header}"
        );
    }
    assert_eq!(
        v.verify_request(with_settings(
            &P,
            SHA1_U_P_SHARED,
            Some("key=ks_old,algorithm=HMAC_SHA1")
        )),
        Ok(())
    );
    // The other key of a rotation is a different secret: its own signature only.
    let rotated = sign_with(Algorithm::Sha256, "another-secret", U, &P);
    assert_eq!(
        v.verify_request(with_settings(
            &P,
            &rotated,
            Some("key=ks_new,algorithm=HMAC_SHA256")
        )),
        Ok(())
    );
    assert_eq!(
        v.verify_request(with_settings(&P, &rotated, Some(sha256))),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn unknown_keys_and_algorithms_are_refused_with_their_reason() {
    let v = shared(&format!("ks_old:{SHARED_SECRET}"));
    let cases = [
        (
            "key=ks_other,algorithm=HMAC_SHA256",
            SignatureError::UnknownKey,
        ),
        (
            "key=ks_old,algorithm=HMAC_SHA512",
            SignatureError::UnsupportedAlgorithm,
        ),
        (
            "key=ks_old,algorithm=none",
            SignatureError::UnsupportedAlgorithm,
        ),
        // No key named: the auth tokens, and there are none for any account here.
        ("algorithm=HMAC_SHA256", SignatureError::UnknownAccount),
        // `Key` is not `key`: Twilio's validator compares names exactly.
        (
            "Key=ks_old,algorithm=HMAC_SHA256",
            SignatureError::UnknownAccount,
        ),
    ];
    for (header, error) in cases {
        assert_eq!(
            v.verify_request(with_settings(&P, SHA256_U_P, Some(header))),
            Err(error),
            "{header}"
        );
    }
    let no_keys = shared("");
    assert_eq!(
        no_keys.verify_request(with_settings(
            &P,
            SHA256_U_P,
            Some("key=ks_old,algorithm=HMAC_SHA256")
        )),
        Err(SignatureError::UnknownKey)
    );
}

#[test]
fn a_shared_key_signs_json_bodies_too() {
    let v = shared(&format!("ks_old:{SHARED_SECRET}"));
    let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    let pq = format!("{PQ}&bodySHA256={hash}");
    let body = br#"{"property": "value", "boolean": true}"#;
    let signed = Signed {
        settings: Some("key=ks_old,algorithm=HMAC_SHA256"),
        ..signed(&pq, Some(SHA256_BODY))
    };
    assert_eq!(v.verify_json(signed, hash, body), Ok(()));
}

#[test]
fn bound_tokens_verify_only_their_account() {
    const PARENT: &str = "AC00000000000000000000000000000001";
    const SUB: &str = "AC00000000000000000000000000000002";
    let tokens: Tokens = format!("{SUB}:12345").parse().unwrap();
    let v = SignatureVerifier::new(tokens, "https://mycompany.com".parse().unwrap());
    let signature = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    let for_account = |account: Option<&'static str>| Signed {
        path_and_query: PQ,
        params: &P,
        signature: Some(signature),
        account_sid: account,
        settings: None,
    };
    assert_eq!(v.verify_request(for_account(Some(SUB))), Ok(()));
    assert_eq!(
        v.verify_request(for_account(Some(PARENT))),
        Err(SignatureError::UnknownAccount)
    );
    assert_eq!(
        v.verify_request(for_account(None)),
        Err(SignatureError::UnknownAccount)
    );
    // With a bare token beside it, another account is checked against the bare one only.
    let both: Tokens = format!("parent-token,{SUB}:12345").parse().unwrap();
    let v = SignatureVerifier::new(both, "https://mycompany.com".parse().unwrap());
    assert_eq!(
        v.verify_request(for_account(Some(PARENT))),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(v.verify_request(for_account(Some(SUB))), Ok(()));
}

mod settings_properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any header parses without panic, and what it yields is a trimmed, non-empty value
        /// taken from the header itself.
        #[test]
        fn any_header_parses_to_trimmed_values_from_it(header in ".{0,80}") {
            let settings = SignatureSettings::parse(&header);
            for value in [settings.key, settings.algorithm].into_iter().flatten() {
                prop_assert!(!value.is_empty());
                prop_assert_eq!(value, value.trim());
                prop_assert!(header.contains(value));
            }
        }

        /// The settings Twilio sends read back, whatever the spaces and order around them.
        #[test]
        fn written_settings_read_back(
            key in "[A-Za-z0-9_]{1,20}",
            algorithm in "(HMAC_SHA1|HMAC_SHA256|hmac_sha256)",
            key_first in any::<bool>(),
            pad in " {0,3}",
        ) {
            let key_part = format!("{pad}key{pad}={pad}{key}{pad}");
            let algorithm_part = format!("{pad}algorithm={algorithm}{pad}");
            let header = if key_first {
                format!("{key_part},{algorithm_part}")
            } else {
                format!("{algorithm_part},{key_part}")
            };
            let settings = SignatureSettings::parse(&header);
            prop_assert_eq!(settings.key, Some(key.as_str()));
            prop_assert_eq!(settings.algorithm, Some(algorithm.as_str()));
        }
    }
}

#[test]
fn parses_public_urls() {
    let url: PublicUrl = "https://hooks.example.com/".parse().unwrap();
    assert_eq!(
        url.forms(),
        ["https://hooks.example.com", "https://hooks.example.com:443"]
    );
    let url: PublicUrl = "http://[::1]:8080".parse().unwrap();
    assert_eq!(url.forms(), ["http://[::1]", "http://[::1]:8080"]);
    for bad in [
        "hooks.example.com",
        "ftp://x",
        "https://",
        "https://x/path",
        "https://x:port",
        "https://x?q",
    ] {
        assert!(bad.parse::<PublicUrl>().is_err(), "{bad}");
    }
}
