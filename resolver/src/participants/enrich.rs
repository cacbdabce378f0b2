//! The pure part of Frontline's `onParticipantAdded` rule: who is a customer participant, and
//! the participant's attributes after adding the customer's `customer_id`, `display_name` and
//! `avatar` to them (by [`crate::attributes::merge`]'s rule).

use frontline_shared::Customer;
use frontline_shared::conversation_event::Participant;

use crate::attributes::{self, NotAnObject};

/// The customer's address when the participant is a customer (an SMS/WhatsApp binding and no
/// chat `Identity`), else `None`.
pub fn customer_address(participant: &Participant) -> Option<&str> {
    if participant
        .identity
        .as_deref()
        .is_some_and(|i| !i.is_empty())
    {
        return None;
    }
    participant
        .messaging_binding
        .address
        .first()
        .map(String::as_str)
        .filter(|address| !address.is_empty())
}

/// The merged attributes, or `None` when they already hold every value (nothing to update).
///
/// # Errors
/// [`NotAnObject`] when the existing attributes are JSON but not an object (overwriting them
/// would lose data); empty or `null` attributes count as `{}`.
pub fn merge_participant_attributes(
    existing: &str,
    customer: &Customer,
) -> Result<Option<String>, NotAnObject> {
    let mut entries = vec![
        ("customer_id", customer.customer_id.as_str()),
        ("display_name", customer.display_name.as_str()),
    ];
    if let Some(avatar) = &customer.avatar {
        entries.push(("avatar", avatar));
    }
    attributes::merge(existing, &entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontline_shared::envelope::Params;
    use frontline_shared::{ConversationEvent, Envelope};
    use serde_json::Value;

    fn customer(avatar: Option<&str>) -> Customer {
        serde_json::from_value(serde_json::json!({
            "customer_id": 1001, "display_name": "Bobby Shaftoe", "avatar": avatar, "channels": []
        }))
        .unwrap()
    }

    fn participant(params: &[(&str, &str)]) -> Participant {
        let envelope = Envelope {
            event_type: "onParticipantAdded".into(),
            account_sid: None,
            received_at: String::new(),
            idempotency_token: None,
            params: Params::from_pairs(
                [("EventType", "onParticipantAdded")]
                    .into_iter()
                    .chain(params.iter().copied()),
            ),
        };
        match ConversationEvent::from_envelope(&envelope) {
            ConversationEvent::ParticipantAdded(participant) => participant,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn merges_the_customer_into_empty_attributes() {
        let merged = merge_participant_attributes("{}", &customer(Some("https://a/1.png")))
            .unwrap()
            .unwrap();
        let merged: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(
            merged,
            serde_json::json!({"customer_id": "1001", "display_name": "Bobby Shaftoe", "avatar": "https://a/1.png"})
        );
    }

    #[test]
    fn already_enriched_means_no_update() {
        let existing =
            r#"{"customer_id":"1001","display_name":"Bobby Shaftoe","avatar":"https://a/1.png"}"#;
        assert_eq!(
            merge_participant_attributes(existing, &customer(Some("https://a/1.png"))),
            Ok(None)
        );
        let without_avatar = r#"{"customer_id":"1001","display_name":"x"}"#;
        assert_eq!(
            merge_participant_attributes(without_avatar, &customer(None)),
            Ok(None)
        );
    }

    #[test]
    fn non_object_attributes_are_refused() {
        assert_eq!(
            merge_participant_attributes("[1,2]", &customer(None)),
            Err(NotAnObject)
        );
    }

    #[test]
    fn only_customer_participants_are_enriched() {
        let sms = participant(&[("MessagingBinding.Address", "+1555"), ("Identity", "")]);
        assert_eq!(customer_address(&sms), Some("+1555"));
        let chat = participant(&[("Identity", "agent@example.com")]);
        assert_eq!(customer_address(&chat), None);
        let both = participant(&[
            ("Identity", "agent@example.com"),
            ("MessagingBinding.Address", "+1555"),
        ]);
        assert_eq!(customer_address(&both), None);
        assert_eq!(customer_address(&participant(&[])), None);
        assert_eq!(
            customer_address(&participant(&[("MessagingBinding.Address", "")])),
            None
        );
    }
}
