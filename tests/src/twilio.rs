//! Webhooks as Twilio sends them: the signature computed from Twilio's description (URL, then
//! every parameter name and value sorted, HMAC-SHA1, Base64), and realistic parameter sets.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The account every test webhook comes from.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// The auth token the test ingress is configured with.
pub const AUTH_TOKEN: &str = "test-auth-token-0123456789abcdef";
/// The origin the test ingress believes Twilio is configured with.
pub const PUBLIC_URL: &str = "https://hooks.example.com";

/// `X-Twilio-Signature` for `url` and form `params`.
pub fn sign(token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac::<Hmac<Sha1>>(token, url, params))
}

/// `X-Twilio-Signature` with Twilio's SharedKey scheme and HMAC-SHA256 (the header
/// `X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=HMAC_SHA256` goes with it).
pub fn sign_sha256(secret: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac::<Hmac<sha2::Sha256>>(secret, url, params))
}

/// The HMAC of the URL and the sorted, de-duplicated parameters.
fn mac<M: Mac + hmac::digest::KeyInit>(
    key: &str,
    url: &str,
    params: &[(String, String)],
) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()).expect("any key size");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// Name/value pairs.
pub type Params = Vec<(String, String)>;

/// The parameters every Conversations webhook carries, for `event_type`, plus `extra`.
pub fn event(event_type: &str, extra: &[(&str, &str)]) -> Params {
    let mut params = vec![
        ("AccountSid".to_owned(), ACCOUNT_SID.to_owned()),
        ("EventType".to_owned(), event_type.to_owned()),
        ("Source".to_owned(), "SMS".to_owned()),
        ("RetryCount".to_owned(), "0".to_owned()),
    ];
    params.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    params
}

/// `onConversationAdd` for an inbound SMS from `address`.
pub fn conversation_add(address: &str) -> Params {
    event(
        "onConversationAdd",
        &[
            ("ChatServiceSid", "IS00000000000000000000000000000001"),
            ("MessagingServiceSid", "MG00000000000000000000000000000001"),
            ("MessagingBinding.ProxyAddress", "+18005550100"),
            ("MessagingBinding.Address", address),
            ("MessageBody", "Hello, is anyone there?"),
            ("State", "active"),
            ("Attributes", "{}"),
        ],
    )
}

/// `onParticipantAdded` for an SMS customer participant.
pub fn participant_added(conversation_sid: &str, participant_sid: &str, address: &str) -> Params {
    event(
        "onParticipantAdded",
        &[
            ("ConversationSid", conversation_sid),
            ("ParticipantSid", participant_sid),
            ("ChatServiceSid", "IS00000000000000000000000000000001"),
            ("MessagingBinding.ProxyAddress", "+18005550100"),
            ("MessagingBinding.Address", address),
            ("MessagingBinding.Type", "SMS"),
            ("Attributes", "{}"),
            ("DateCreated", "2026-11-25T10:00:00Z"),
        ],
    )
}

/// `onMessageAdded` in `conversation_sid`.
pub fn message_added(conversation_sid: &str, index: u32, body: &str) -> Params {
    let index = index.to_string();
    event(
        "onMessageAdded",
        &[
            ("ConversationSid", conversation_sid),
            ("MessageSid", "IM00000000000000000000000000000001"),
            ("Index", &index),
            ("Body", body),
            ("Author", "+14155550101"),
            ("ParticipantSid", "MB00000000000000000000000000000001"),
            ("Attributes", "{}"),
            ("DateCreated", "2026-11-25T10:00:00Z"),
        ],
    )
}
