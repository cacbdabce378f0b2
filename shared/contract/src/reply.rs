//! The resolvers' answer to a pre-event request. It travels as typed data, so the ingress can
//! tell "the resolver said no" (reject) from "the resolver failed" (error, which takes the
//! configured fallback like a missing resolver would).

use serde::{Deserialize, Serialize};

/// Fields a pre-event answer may change. Serialised, it is exactly the JSON body Twilio reads:
/// snake_case keys, absent fields left out, `attributes` a JSON document inside a string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modification {
    /// Conversation friendly name (`onConversationAdd`, `onConversationUpdate`).
    #[serde(
        rename = "friendly_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub friendly_name: Option<String>,
    /// Conversation unique name.
    #[serde(
        rename = "unique_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unique_name: Option<String>,
    /// Attributes as a JSON document in a string.
    #[serde(
        rename = "attributes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub attributes: Option<String>,
    /// Message body (`onMessageAdd`, `onMessageUpdate`).
    #[serde(rename = "body", default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Message author (`onMessageAdd`, `onMessageUpdate`).
    #[serde(rename = "author", default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

impl Modification {
    /// No field changed: answering it is the same as accepting.
    pub fn is_empty(&self) -> bool {
        *self == Modification::default()
    }

    /// The JSON body for Twilio.
    pub fn to_twilio_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a modification always serialises")
    }
}

/// A resolver's answer to a pre-event.
// Decoded through a flat struct ([`WireReply`]): serde's internally tagged enums first buffer
// the whole object into an untyped tree, which cost more than the rest of the ingress's reply
// handling. The wire form is the same either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", try_from = "WireReply")]
pub enum PreReply {
    /// Let the action through unmodified: HTTP 200 `{}`.
    Accept,
    /// Let the action through with these fields changed: HTTP 200 with the fields.
    Modify {
        /// The fields to change.
        #[serde(rename = "fields")]
        fields: Modification,
    },
    /// Block the action: HTTP 403.
    Reject {
        /// Why, for logs; never sent to Twilio.
        #[serde(rename = "reason")]
        reason: String,
    },
    /// The resolver could not decide: the ingress takes `PRE_EVENT_FALLBACK`.
    Error {
        /// What went wrong, for logs.
        #[serde(rename = "message")]
        message: String,
    },
}

impl PreReply {
    /// Decodes a reply payload.
    ///
    /// # Errors
    /// When the payload is not a reply's JSON.
    pub fn from_slice(payload: &[u8]) -> Result<PreReply, serde_json::Error> {
        serde_json::from_slice(payload)
    }

    /// Encodes the reply payload.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a reply always serialises")
    }
}

/// A reply as it travels, every variant's fields optional: what a [`PreReply`] is decoded from.
#[derive(Deserialize)]
struct WireReply {
    action: Action,
    #[serde(default)]
    fields: Option<Modification>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The `action` tag.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Accept,
    Modify,
    Reject,
    Error,
}

impl TryFrom<WireReply> for PreReply {
    type Error = &'static str;

    fn try_from(wire: WireReply) -> Result<PreReply, &'static str> {
        match wire.action {
            Action::Accept => Ok(PreReply::Accept),
            Action::Modify => wire
                .fields
                .map(|fields| PreReply::Modify { fields })
                .ok_or("missing field `fields`"),
            Action::Reject => wire
                .reason
                .map(|reason| PreReply::Reject { reason })
                .ok_or("missing field `reason`"),
            Action::Error => wire
                .message
                .map(|message| PreReply::Error { message })
                .ok_or("missing field `message`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_json_is_exact() {
        let cases = [
            (PreReply::Accept, r#"{"action":"accept"}"#),
            (
                PreReply::Modify {
                    fields: Modification {
                        friendly_name: Some("Bobby".into()),
                        attributes: Some(r#"{"avatar":"https://a/b.png"}"#.into()),
                        ..Modification::default()
                    },
                },
                r#"{"action":"modify","fields":{"friendly_name":"Bobby","attributes":"{\"avatar\":\"https://a/b.png\"}"}}"#,
            ),
            (
                PreReply::Reject {
                    reason: "blocked number".into(),
                },
                r#"{"action":"reject","reason":"blocked number"}"#,
            ),
            (
                PreReply::Error {
                    message: "directory down".into(),
                },
                r#"{"action":"error","message":"directory down"}"#,
            ),
        ];
        for (reply, json) in cases {
            assert_eq!(String::from_utf8(reply.to_vec()).unwrap(), json);
            assert_eq!(PreReply::from_slice(json.as_bytes()).unwrap(), reply);
        }
    }

    #[test]
    fn twilio_body_has_only_present_fields() {
        assert_eq!(Modification::default().to_twilio_body(), b"{}");
        assert!(Modification::default().is_empty());
        let body = Modification {
            body: Some("hi".into()),
            ..Modification::default()
        };
        assert_eq!(body.to_twilio_body(), br#"{"body":"hi"}"#);
        assert!(!body.is_empty());
    }

    #[test]
    fn garbage_is_an_error() {
        for junk in [&b""[..], b"{}", b"{\"action\":\"maybe\"}", b"\xff"] {
            assert!(PreReply::from_slice(junk).is_err(), "{junk:?}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// The decoder serde derives for the tagged form: the reference the flat one is held to.
    #[derive(Deserialize)]
    #[serde(tag = "action", rename_all = "snake_case")]
    enum Tagged {
        Accept,
        Modify { fields: Modification },
        Reject { reason: String },
        Error { message: String },
    }

    impl From<Tagged> for PreReply {
        fn from(tagged: Tagged) -> PreReply {
            match tagged {
                Tagged::Accept => PreReply::Accept,
                Tagged::Modify { fields } => PreReply::Modify { fields },
                Tagged::Reject { reason } => PreReply::Reject { reason },
                Tagged::Error { message } => PreReply::Error { message },
            }
        }
    }

    proptest! {
        /// Every reply the resolvers can send reads back as sent.
        #[test]
        fn every_reply_round_trips(kind in 0..3u8, text in ".{0,40}") {
            let reply = match kind {
                0 => PreReply::Accept,
                1 => PreReply::Reject { reason: text },
                _ => PreReply::Error { message: text },
            };
            prop_assert_eq!(PreReply::from_slice(&reply.to_vec()).unwrap(), reply);
        }

        /// Whatever bytes decode as a reply encode to bytes that decode to the same reply.
        #[test]
        fn what_decodes_survives_re_encoding(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(reply) = PreReply::from_slice(&bytes) {
                prop_assert_eq!(PreReply::from_slice(&reply.to_vec()).unwrap(), reply);
            }
        }

        /// The flat decoder never reads a reply the internally tagged one would read
        /// differently: objects made of the reply's own keys and values, in any order.
        #[test]
        fn flat_decoding_agrees_with_tagged_decoding(
            entries in proptest::collection::vec((0..6usize, 0..9usize), 0..5),
        ) {
            const KEYS: [&str; 6] = ["action", "fields", "reason", "message", "other", "body"];
            const VALUES: [&str; 9] = [
                r#""accept""#, r#""modify""#, r#""reject""#, r#""error""#, r#""x""#, "{}",
                r#"{"body":"hi","friendly_name":"F"}"#, "1", "null",
            ];
            let body = entries
                .iter()
                .map(|(k, v)| format!("\"{}\":{}", KEYS[*k], VALUES[*v]))
                .collect::<Vec<_>>()
                .join(",");
            let json = format!("{{{body}}}");
            let flat = PreReply::from_slice(json.as_bytes()).ok();
            let tagged = serde_json::from_str::<Tagged>(&json).ok().map(PreReply::from);
            // Where the two differ, the flat decoder refuses (junk in a field the action does not
            // use): the ingress then takes its fallback.
            if let Some(flat) = flat {
                prop_assert_eq!(Some(flat), tagged, "{}", json);
            }
        }

        #[test]
        fn modifications_round_trip(
            name in proptest::option::of(".{0,20}"),
            body in proptest::option::of(".{0,20}"),
            author in proptest::option::of(".{0,20}"),
            attributes in proptest::option::of(".{0,40}"),
        ) {
            let reply = PreReply::Modify { fields: Modification { friendly_name: name, unique_name: None, attributes, body, author } };
            prop_assert_eq!(PreReply::from_slice(&reply.to_vec()).unwrap(), reply);
        }
    }
}
