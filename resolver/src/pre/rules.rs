//! The pure decisions of the resolver: given a pre-event's envelope and the directory, the
//! answer. No I/O, so every rule is unit-tested without NATS.
//!
//! `onConversationAdd` (Frontline's inbound rule): when the customer's address names a known
//! customer, the conversation is named after them and their avatar is merged into its
//! attributes; an unknown address names the conversation after the address; no address, accept.
//! Every other pre-event is accepted.

use crate::attributes;
use crate::directory::{CustomerDirectory, Lookup};
use frontline_shared::{Envelope, EventType, Modification, PreReply};

/// The customer's address (a list for group MMS).
const ADDRESS: &str = "MessagingBinding.Address";
/// The author's address in a group MMS.
const AUTHOR_ADDRESS: &str = "MessagingBinding.AuthorAddress";
/// The conversation's attributes (a JSON object in a string).
const ATTRIBUTES: &str = "Attributes";

/// Every parameter the rules read: the resolver decodes only these from a pre-event's envelope
/// (see [`frontline_shared::Envelope::from_slice_with_params`]). A rule reading another parameter
/// must add it here; the tests decide every case both ways to catch a missing name.
pub const PARAMS_READ: &[&str] = &[ADDRESS, AUTHOR_ADDRESS, ATTRIBUTES];

/// A decision: the reply, and the directory lookup it made (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The answer for the ingress.
    pub reply: PreReply,
    /// The lookup made.
    pub lookup: Option<Lookup>,
}

/// Decides the answer to one pre-event.
pub fn resolve(envelope: &Envelope, directory: &dyn CustomerDirectory) -> Resolution {
    match EventType::parse(&envelope.event_type) {
        Some(EventType::ConversationAdd) => conversation_add(envelope, directory),
        _ => Resolution {
            reply: PreReply::Accept,
            lookup: None,
        },
    }
}

fn conversation_add(envelope: &Envelope, directory: &dyn CustomerDirectory) -> Resolution {
    let params = &envelope.params;
    // The author of a group MMS first, then every listed address.
    let mut candidates = params
        .get_all(AUTHOR_ADDRESS)
        .chain(params.get_all(ADDRESS))
        .filter(|address| !address.is_empty())
        .peekable();
    let Some(&first) = candidates.peek() else {
        return Resolution {
            reply: PreReply::Accept,
            lookup: None,
        };
    };
    let Some(customer) = candidates.find_map(|address| directory.customer(address)) else {
        let fields = Modification {
            friendly_name: Some(first.to_owned()),
            ..Modification::default()
        };
        return Resolution {
            reply: PreReply::Modify { fields },
            lookup: Some(Lookup::Miss),
        };
    };
    // Attributes that are not an object are left as they are: the name is still set.
    let attributes = customer.avatar.as_deref().and_then(|avatar| {
        attributes::merge(params.get(ATTRIBUTES).unwrap_or(""), &[("avatar", avatar)])
            .ok()
            .flatten()
    });
    let fields = Modification {
        friendly_name: Some(customer.display_name.clone()),
        attributes,
        ..Modification::default()
    };
    Resolution {
        reply: PreReply::Modify { fields },
        lookup: Some(Lookup::Hit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;
    use frontline_shared::envelope::Params;
    use serde_json::Value;

    fn directory() -> Directory {
        let customers = serde_json::json!([
            {"customer_id": 7, "display_name": "Bobby Shaftoe", "avatar": "https://img.example/bobby.png",
             "channels": [{"type": "sms", "value": "+14155550001"}]},
            {"customer_id": "8", "display_name": "No Avatar",
             "channels": [{"type": "whatsapp", "value": "whatsapp:+14155550002"}]},
        ]);
        Directory::new(serde_json::from_value::<Vec<_>>(customers).unwrap())
    }

    fn envelope(event_type: &str, params: &[(&str, &str)]) -> Envelope {
        Envelope {
            event_type: event_type.into(),
            account_sid: Some("AC1".into()),
            received_at: "2026-11-25T10:00:00.000Z".into(),
            idempotency_token: None,
            params: Params::from_pairs(params.iter().copied()),
        }
    }

    /// The decision on the whole envelope, checked equal to the decision on the envelope as
    /// the resolver decodes it (only [`PARAMS_READ`]).
    fn decide(envelope: &Envelope, directory: &dyn CustomerDirectory) -> Resolution {
        let full = resolve(envelope, directory);
        let selected = Envelope::from_slice_with_params(&envelope.to_vec(), PARAMS_READ).unwrap();
        assert_eq!(
            resolve(&selected, directory),
            full,
            "a rule reads a parameter missing from PARAMS_READ"
        );
        full
    }

    fn modified(resolution: Resolution) -> Modification {
        match resolution.reply {
            PreReply::Modify { fields } => fields,
            other => panic!("expected a modification, got {other:?}"),
        }
    }

    #[test]
    fn known_customer_gets_name_and_avatar() {
        let event = envelope(
            "onConversationAdd",
            &[("MessagingBinding.Address", "+14155550001")],
        );
        let resolution = decide(&event, &directory());
        assert_eq!(resolution.lookup, Some(Lookup::Hit));
        let fields = modified(resolution);
        assert_eq!(fields.friendly_name.as_deref(), Some("Bobby Shaftoe"));
        assert_eq!(
            fields.attributes.as_deref(),
            Some(r#"{"avatar":"https://img.example/bobby.png"}"#)
        );
    }

    #[test]
    fn existing_attributes_are_kept() {
        let event = envelope(
            "onConversationAdd",
            &[
                ("MessagingBinding.Address", "+14155550001"),
                ("Attributes", r#"{"team":"blue","n":1}"#),
            ],
        );
        let fields = modified(decide(&event, &directory()));
        let attributes: Value =
            serde_json::from_str(fields.attributes.as_deref().unwrap()).unwrap();
        assert_eq!(
            attributes,
            serde_json::json!({"team": "blue", "n": 1, "avatar": "https://img.example/bobby.png"})
        );
        // An avatar already set is kept, so the attributes are not changed at all.
        let event = envelope(
            "onConversationAdd",
            &[
                ("MessagingBinding.Address", "+14155550001"),
                ("Attributes", r#"{"avatar":"mine"}"#),
            ],
        );
        assert_eq!(modified(decide(&event, &directory())).attributes, None);
    }

    #[test]
    fn whatsapp_prefix_matches_and_no_avatar_means_no_attributes() {
        let event = envelope(
            "onConversationAdd",
            &[("MessagingBinding.Address", "+14155550002")],
        );
        let fields = modified(decide(&event, &directory()));
        assert_eq!(fields.friendly_name.as_deref(), Some("No Avatar"));
        assert_eq!(fields.attributes, None);
    }

    #[test]
    fn unknown_address_names_the_conversation_after_it() {
        let event = envelope(
            "onConversationAdd",
            &[("MessagingBinding.Address", "whatsapp:+19995550000")],
        );
        let resolution = decide(&event, &directory());
        assert_eq!(resolution.lookup, Some(Lookup::Miss));
        let fields = modified(resolution);
        assert_eq!(
            fields.friendly_name.as_deref(),
            Some("whatsapp:+19995550000")
        );
        assert_eq!(fields.attributes, None);
    }

    #[test]
    fn no_address_is_accepted() {
        for params in [
            &[][..],
            &[("MessagingBinding.Address", "")][..],
            &[("FriendlyName", "x")][..],
        ] {
            let resolution = decide(&envelope("onConversationAdd", params), &directory());
            assert_eq!(
                resolution,
                Resolution {
                    reply: PreReply::Accept,
                    lookup: None
                },
                "{params:?}"
            );
        }
    }

    #[test]
    fn group_mms_uses_the_author_address() {
        let event = envelope(
            "onConversationAdd",
            &[
                ("MessagingBinding.Address", "+19995550000"),
                ("MessagingBinding.Address", "+19995550001"),
                ("MessagingBinding.AuthorAddress", "+14155550001"),
            ],
        );
        assert_eq!(
            modified(decide(&event, &directory()))
                .friendly_name
                .as_deref(),
            Some("Bobby Shaftoe")
        );
        // Without a known author, any listed address that is known still names it.
        let event = envelope(
            "onConversationAdd",
            &[
                ("MessagingBinding.Address", "+19995550000"),
                ("MessagingBinding.Address", "+14155550001"),
            ],
        );
        assert_eq!(
            modified(decide(&event, &directory()))
                .friendly_name
                .as_deref(),
            Some("Bobby Shaftoe")
        );
    }

    #[test]
    fn other_pre_events_are_accepted() {
        for event_type in [
            "onMessageAdd",
            "onParticipantAdd",
            "onUserUpdate",
            "onConversationRemove",
        ] {
            let event = envelope(event_type, &[("MessagingBinding.Address", "+14155550001")]);
            assert_eq!(
                decide(&event, &directory()).reply,
                PreReply::Accept,
                "{event_type}"
            );
        }
    }

    #[test]
    fn attributes_that_are_not_an_object_are_left_alone() {
        for attributes in ["not json", "[1]", "\"text\""] {
            let event = envelope(
                "onConversationAdd",
                &[
                    ("MessagingBinding.Address", "+14155550001"),
                    ("Attributes", attributes),
                ],
            );
            let fields = modified(decide(&event, &directory()));
            assert_eq!(fields.friendly_name.as_deref(), Some("Bobby Shaftoe"));
            assert_eq!(fields.attributes, None, "{attributes}");
        }
    }
}
