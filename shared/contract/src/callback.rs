//! Frontline's integration callbacks on the wire: the three routes answered by the resolvers
//! over NATS request/reply, and their reply. (The fourth, routing, is stored like a post-event.)

use serde::{Deserialize, Serialize};

/// A synchronous Frontline callback route: `/callbacks/<route>` on the ingress,
/// `<prefix>.callback.<route>.<Location>` on NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackRoute {
    /// The CRM callback: `GetCustomersList`, `GetCustomerDetailsByCustomerId`.
    Crm,
    /// The outgoing conversations callback: `GetProxyAddress`.
    OutgoingConversation,
    /// The templates callback: `GetTemplatesByCustomerId`.
    Templates,
}

impl CallbackRoute {
    /// Every route.
    pub const ALL: [CallbackRoute; 3] = [
        CallbackRoute::Crm,
        CallbackRoute::OutgoingConversation,
        CallbackRoute::Templates,
    ];

    /// The route's name in the URL and the subject.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallbackRoute::Crm => "crm",
            CallbackRoute::OutgoingConversation => "outgoing-conversation",
            CallbackRoute::Templates => "templates",
        }
    }

    /// The route named exactly `name`.
    pub fn parse(name: &str) -> Option<CallbackRoute> {
        CallbackRoute::ALL
            .into_iter()
            .find(|route| route.as_str() == name)
    }

    /// The `Location`s Frontline sends on this route.
    pub const fn locations(self) -> &'static [&'static str] {
        match self {
            CallbackRoute::Crm => &[GET_CUSTOMERS_LIST, GET_CUSTOMER_DETAILS],
            CallbackRoute::OutgoingConversation => &[GET_PROXY_ADDRESS],
            CallbackRoute::Templates => &[GET_TEMPLATES],
        }
    }
}

/// CRM: the customers a worker sees.
pub const GET_CUSTOMERS_LIST: &str = "GetCustomersList";
/// CRM: one customer's whole record.
pub const GET_CUSTOMER_DETAILS: &str = "GetCustomerDetailsByCustomerId";
/// Outgoing conversations: the number to write from.
pub const GET_PROXY_ADDRESS: &str = "GetProxyAddress";
/// Templates: the message templates for a customer.
pub const GET_TEMPLATES: &str = "GetTemplatesByCustomerId";

/// The largest answer body Frontline takes (error 48003 beyond it).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A resolver's answer to a callback: the HTTP status and JSON body the ingress relays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackReply {
    /// The HTTP status for Frontline.
    #[serde(rename = "status")]
    pub status: u16,
    /// The JSON body; `null` for an empty one.
    #[serde(rename = "body")]
    pub body: Option<serde_json::Value>,
}

impl CallbackReply {
    /// 200 with `body`.
    pub fn ok(body: serde_json::Value) -> CallbackReply {
        CallbackReply {
            status: 200,
            body: Some(body),
        }
    }

    /// `status` with no body.
    pub fn empty(status: u16) -> CallbackReply {
        CallbackReply { status, body: None }
    }

    /// The payload on NATS.
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a callback reply always serialises")
    }

    /// Decodes a payload.
    ///
    /// # Errors
    /// When it is not a callback reply.
    pub fn from_slice(payload: &[u8]) -> Result<CallbackReply, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_have_the_specified_json() {
        let reply = CallbackReply::ok(serde_json::json!({"proxy_address": "+18005550100"}));
        assert_eq!(
            String::from_utf8(reply.to_vec()).unwrap(),
            r#"{"status":200,"body":{"proxy_address":"+18005550100"}}"#
        );
        assert_eq!(
            String::from_utf8(CallbackReply::empty(404).to_vec()).unwrap(),
            r#"{"status":404,"body":null}"#
        );
        assert_eq!(
            CallbackReply::from_slice(br#"{"status":403,"body":null}"#).unwrap(),
            CallbackReply::empty(403)
        );
        assert!(CallbackReply::from_slice(b"{}").is_err());
    }

    #[test]
    fn routes_round_trip() {
        for route in CallbackRoute::ALL {
            assert_eq!(CallbackRoute::parse(route.as_str()), Some(route));
        }
        assert_eq!(CallbackRoute::parse("routing"), None);
    }
}
