//! The Frontline customer record, as the customer directory holds it (Frontline's own shape).
//! `customer_id` may be a JSON string or number in a record; it is always a string here.

use serde::{Deserialize, Deserializer, Serialize};

/// One contact channel of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// `sms`, `whatsapp`, `chat`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The address, e.g. `+14155551212` or `whatsapp:+14155551212`.
    #[serde(rename = "value")]
    pub value: String,
}

/// A link shown on the customer's page in Frontline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// `Facebook`, `LinkedIn`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The URL.
    #[serde(rename = "value")]
    pub value: String,
    /// The label.
    #[serde(rename = "display_name", default)]
    pub display_name: String,
}

/// Free-form details shown on the customer's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    /// Section title.
    #[serde(rename = "title", default)]
    pub title: String,
    /// Section text.
    #[serde(rename = "content", default)]
    pub content: String,
}

/// A Frontline customer record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// The CRM's id, always a string.
    #[serde(rename = "customer_id", deserialize_with = "string_or_number")]
    pub customer_id: String,
    /// The name shown to workers.
    #[serde(rename = "display_name")]
    pub display_name: String,
    /// Absolute URL of the avatar image.
    #[serde(rename = "avatar", default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// Addresses the customer writes from.
    #[serde(rename = "channels", default)]
    pub channels: Vec<Channel>,
    /// Links shown in Frontline.
    #[serde(rename = "links", default)]
    pub links: Vec<Link>,
    /// Details shown in Frontline.
    #[serde(rename = "details", default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
    /// The identity of the Frontline user who owns this customer (routing, and whose customer
    /// list shows it). Kept in the directory; never sent back in a CRM answer.
    #[serde(rename = "worker", default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

/// An address without a `whatsapp:` or `messenger:` channel prefix.
pub fn strip_channel_prefix(address: &str) -> &str {
    ["whatsapp:", "messenger:"]
        .iter()
        .find_map(|prefix| address.strip_prefix(prefix))
        .unwrap_or(address)
}

fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Id::deserialize(deserializer)? {
        Id::Text(text) => text,
        Id::Number(number) => number.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_id_may_be_a_number() {
        let json = r#"{"customer_id":42,"display_name":"Ada","channels":[{"type":"sms","value":"+1555"}]}"#;
        let customer: Customer = serde_json::from_str(json).unwrap();
        assert_eq!(customer.customer_id, "42");
        assert_eq!(
            serde_json::to_string(&customer).unwrap(),
            r#"{"customer_id":"42","display_name":"Ada","channels":[{"type":"sms","value":"+1555"}],"links":[]}"#
        );
    }

    #[test]
    fn full_record_round_trips() {
        let json = r#"{"customer_id":"c1","display_name":"Bo","avatar":"https://x/y.png","channels":[{"type":"whatsapp","value":"whatsapp:+1"}],"links":[{"type":"LinkedIn","value":"https://l","display_name":"Bo on LinkedIn"}],"details":{"title":"Notes","content":"VIP"}}"#;
        let customer: Customer = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&customer).unwrap(), json);
    }

    #[test]
    fn channel_prefixes_are_stripped() {
        assert_eq!(strip_channel_prefix("whatsapp:+1555"), "+1555");
        assert_eq!(strip_channel_prefix("messenger:123"), "123");
        assert_eq!(strip_channel_prefix("+1555"), "+1555");
        assert_eq!(strip_channel_prefix("sms:+1555"), "sms:+1555");
    }
}
