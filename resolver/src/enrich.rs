//! The pure part of Frontline's `onParticipantAdded` rule: who is a customer participant, and
//! the participant's attributes after merging the customer's `customer_id`, `display_name` and
//! `avatar` into them (existing values win, other keys kept).

use frontline_shared::{Customer, Envelope};
use serde_json::{Map, Value};

/// The customer's address when the participant is a customer (an SMS/WhatsApp binding and no
/// chat `Identity`), else `None`.
pub fn customer_address(envelope: &Envelope) -> Option<&str> {
    let params = &envelope.params;
    if params.non_empty("Identity").is_some() {
        return None;
    }
    params.non_empty("MessagingBinding.Address")
}

/// Why existing attributes cannot be merged into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the participant's attributes are not a JSON object")]
pub struct NotAnObject;

/// The merged attributes, or `None` when they already hold every value (nothing to update).
///
/// # Errors
/// [`NotAnObject`] when the existing attributes are JSON but not an object (overwriting them
/// would lose data); empty or `null` attributes count as `{}`.
pub fn merge_participant_attributes(
    existing: &str,
    customer: &Customer,
) -> Result<Option<String>, NotAnObject> {
    let mut object = match existing.trim() {
        "" | "null" => Map::new(),
        text => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => object,
            _ => return Err(NotAnObject),
        },
    };
    let mut changed = false;
    let mut add = |key: &str, value: &str| {
        if !object.contains_key(key) {
            object.insert(key.to_owned(), Value::String(value.to_owned()));
            changed = true;
        }
    };
    add("customer_id", &customer.customer_id);
    add("display_name", &customer.display_name);
    if let Some(avatar) = &customer.avatar {
        add("avatar", avatar);
    }
    Ok(changed.then(|| Value::Object(object).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontline_shared::envelope::Params;

    fn customer(avatar: Option<&str>) -> Customer {
        serde_json::from_value(serde_json::json!({
            "customer_id": 1001, "display_name": "Bobby Shaftoe", "avatar": avatar, "channels": []
        }))
        .unwrap()
    }

    fn envelope(params: &[(&str, &str)]) -> Envelope {
        Envelope {
            event_type: "onParticipantAdded".into(),
            account_sid: None,
            received_at: String::new(),
            idempotency_token: None,
            params: Params::from_pairs(params.iter().copied()),
        }
    }

    #[test]
    fn merges_into_empty_attributes() {
        let merged = merge_participant_attributes("{}", &customer(Some("https://a/1.png")))
            .unwrap()
            .unwrap();
        let merged: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(
            merged,
            serde_json::json!({"customer_id": "1001", "display_name": "Bobby Shaftoe", "avatar": "https://a/1.png"})
        );
        for empty in ["", "null", "  "] {
            assert!(
                merge_participant_attributes(empty, &customer(None))
                    .unwrap()
                    .is_some(),
                "{empty:?}"
            );
        }
    }

    #[test]
    fn existing_values_win_and_other_keys_stay() {
        let existing = r#"{"display_name":"Bob (VIP)","team":"blue"}"#;
        let merged = merge_participant_attributes(existing, &customer(None))
            .unwrap()
            .unwrap();
        let merged: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(
            merged,
            serde_json::json!({"display_name": "Bob (VIP)", "team": "blue", "customer_id": "1001"})
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
        for bad in ["[1,2]", "\"text\"", "42", "{broken"] {
            assert_eq!(
                merge_participant_attributes(bad, &customer(None)),
                Err(NotAnObject),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_customer_participants_are_enriched() {
        let sms = envelope(&[("MessagingBinding.Address", "+1555"), ("Identity", "")]);
        assert_eq!(customer_address(&sms), Some("+1555"));
        let chat = envelope(&[("Identity", "agent@example.com")]);
        assert_eq!(customer_address(&chat), None);
        let both = envelope(&[
            ("Identity", "agent@example.com"),
            ("MessagingBinding.Address", "+1555"),
        ]);
        assert_eq!(customer_address(&both), None);
        assert_eq!(customer_address(&envelope(&[])), None);
    }
}
