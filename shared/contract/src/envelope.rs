//! The envelope: the JSON payload of every message the ingress puts on NATS, pre or post.
//! `params` holds every webhook parameter exactly as Twilio sent it, names unchanged; a name
//! Twilio repeated (group MMS addresses) becomes an array of its values in the order sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One parameter's value: a single string, or every value of a repeated name. On the wire a
/// JSON string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// The name appeared once.
    One(String),
    /// The name appeared more than once.
    Many(Vec<String>),
}

// Decoded by hand rather than as an untagged enum: serde buffers every untagged value before
// trying the variants, which costs an allocation per parameter on the resolvers' hot path.
impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ParamValue, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ParamValue;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<ParamValue, E> {
                Ok(ParamValue::One(value.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, value: String) -> Result<ParamValue, E> {
                Ok(ParamValue::One(value))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ParamValue, A::Error> {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(value) = seq.next_element::<String>()? {
                    values.push(value);
                }
                Ok(ParamValue::Many(values))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

impl ParamValue {
    /// The first value.
    pub fn first(&self) -> Option<&str> {
        match self {
            ParamValue::One(value) => Some(value),
            ParamValue::Many(values) => values.first().map(String::as_str),
        }
    }

    /// Every value, in the order Twilio sent them.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let values: &[String] = match self {
            ParamValue::One(value) => std::slice::from_ref(value),
            ParamValue::Many(values) => values,
        };
        values.iter().map(String::as_str)
    }
}

/// Webhook parameters by their Twilio names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Params(BTreeMap<String, ParamValue>);

impl Params {
    /// Collects name/value pairs; a repeated name keeps all its values, in order.
    pub fn from_pairs<I, K, V>(pairs: I) -> Params
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut map: BTreeMap<String, ParamValue> = BTreeMap::new();
        for (name, value) in pairs {
            let value = value.into();
            match map.entry(name.into()) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(ParamValue::One(value));
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => {
                    let entry = slot.get_mut();
                    match entry {
                        ParamValue::One(first) => {
                            *entry = ParamValue::Many(vec![std::mem::take(first), value]);
                        }
                        ParamValue::Many(values) => values.push(value),
                    }
                }
            }
        }
        Params(map)
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(ParamValue::first)
    }

    /// Every value of `name` (none when absent).
    pub fn get_all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.get(name).into_iter().flat_map(ParamValue::iter)
    }

    /// The first value of `name` when present and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }

    /// Sets a parameter's value.
    pub fn insert(&mut self, name: &str, value: ParamValue) {
        self.0.insert(name.to_owned(), value);
    }

    /// Takes a parameter out (for typed parsing: what is left is the unknown rest).
    pub fn remove(&mut self, name: &str) -> Option<ParamValue> {
        self.0.remove(name)
    }

    /// Every parameter, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// How many distinct names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No parameters at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The payload of every pre-event request and every stored post-event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// `EventType` as Twilio sent it (also for unknown types).
    #[serde(rename = "event_type")]
    pub event_type: String,
    /// `AccountSid`, when Twilio sent it.
    #[serde(rename = "account_sid")]
    pub account_sid: Option<String>,
    /// When the ingress received the webhook, RFC 3339 UTC with milliseconds.
    #[serde(rename = "received_at")]
    pub received_at: String,
    /// `I-Twilio-Idempotency-Token`, when Twilio sent one.
    #[serde(rename = "idempotency_token")]
    pub idempotency_token: Option<String>,
    /// Every parameter exactly as sent.
    #[serde(rename = "params")]
    pub params: Params,
}

/// An envelope's fields borrowed from a webhook, encoded without building an [`Envelope`]: the
/// ingress's hot path. [`EnvelopeRef::to_vec`] gives exactly the bytes [`Envelope::to_vec`] gives
/// for the same webhook.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeRef<'a, P> {
    /// `EventType` as Twilio sent it (empty when absent).
    pub event_type: &'a str,
    /// `AccountSid`, when Twilio sent it.
    pub account_sid: Option<&'a str>,
    /// When the ingress received the webhook.
    pub received_at: &'a str,
    /// `I-Twilio-Idempotency-Token`, when Twilio sent one.
    pub idempotency_token: Option<&'a str>,
    /// Every parameter, in the order Twilio sent them.
    pub params: &'a [P],
}

impl<K: AsRef<str>, V: AsRef<str>> EnvelopeRef<'_, (K, V)> {
    /// Encodes the envelope's JSON: parameters sorted by name in byte order, a repeated name's
    /// values as an array in the order sent.
    pub fn to_vec(&self) -> Vec<u8> {
        self.to_vec_with(self.params)
    }
}

impl<'a> EnvelopeRef<'a, (&'a str, &'a str)> {
    /// [`EnvelopeRef::to_vec`] for parameters already sorted by name with no name repeated
    /// (checked in debug builds): the same bytes, without sorting them again.
    pub fn to_vec_sorted(&self) -> Vec<u8> {
        debug_assert!(self.params.windows(2).all(|pair| pair[0].0 < pair[1].0));
        self.encode(self.params)
    }
}

impl<P> EnvelopeRef<'_, P> {
    /// [`EnvelopeRef::to_vec`] with `params` in place of this envelope's own parameters.
    pub fn to_vec_with<K: AsRef<str>, V: AsRef<str>>(&self, params: &[(K, V)]) -> Vec<u8> {
        let mut sorted: Vec<(&str, &str)> = params
            .iter()
            .map(|(name, value)| (name.as_ref(), value.as_ref()))
            .collect();
        // Stable: the values of a repeated name keep the order Twilio sent them in.
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        self.encode(&sorted)
    }

    fn encode(&self, sorted: &[(&str, &str)]) -> Vec<u8> {
        let wire = WireEnvelope {
            event_type: self.event_type,
            account_sid: self.account_sid,
            received_at: self.received_at,
            idempotency_token: self.idempotency_token,
            params: SortedParams(sorted),
        };
        let size = 96
            + sorted
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        // Serialising strings and maps of strings cannot fail.
        serde_json::to_writer(&mut out, &wire).expect("an envelope always serialises");
        out
    }
}

/// The envelope's field order and names, over borrowed data.
#[derive(Serialize)]
struct WireEnvelope<'a> {
    event_type: &'a str,
    account_sid: Option<&'a str>,
    received_at: &'a str,
    idempotency_token: Option<&'a str>,
    params: SortedParams<'a>,
}

/// Pairs sorted by name: one map entry per name, an array when the name repeats.
struct SortedParams<'a>(&'a [(&'a str, &'a str)]);

impl Serialize for SortedParams<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        let mut rest = self.0;
        while let Some(&(name, value)) = rest.first() {
            let same = rest.iter().take_while(|(other, _)| *other == name).count();
            if same == 1 {
                map.serialize_entry(name, value)?;
            } else {
                let values: Vec<&str> = rest[..same].iter().map(|(_, v)| *v).collect();
                map.serialize_entry(name, &values)?;
            }
            rest = &rest[same..];
        }
        map.end()
    }
}

impl Envelope {
    /// Decodes an envelope from a NATS payload.
    ///
    /// # Errors
    /// When the payload is not an envelope's JSON.
    pub fn from_slice(payload: &[u8]) -> Result<Envelope, serde_json::Error> {
        serde_json::from_slice(payload)
    }

    /// Decodes an envelope keeping only the parameters named in `wanted`: the others are
    /// skipped without being copied. For consumers that read a few parameters of every message
    /// (the resolvers' pre-event rules); the result equals [`Envelope::from_slice`]'s with the
    /// other parameters removed.
    ///
    /// # Errors
    /// When the payload is not an envelope's JSON.
    pub fn from_slice_with_params(
        payload: &[u8],
        wanted: &[&str],
    ) -> Result<Envelope, serde_json::Error> {
        use serde::de::DeserializeSeed;
        let mut deserializer = serde_json::Deserializer::from_slice(payload);
        let envelope = selective::EnvelopeSeed(wanted).deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(envelope)
    }

    /// Encodes the envelope as its JSON payload.
    pub fn to_vec(&self) -> Vec<u8> {
        // Serialising strings and maps of strings cannot fail.
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// `ConversationSid` when present and not empty.
    pub fn conversation_sid(&self) -> Option<&str> {
        self.params.non_empty("ConversationSid")
    }
}

mod selective;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            event_type: "onParticipantAdded".into(),
            account_sid: Some("AC123".into()),
            received_at: "2026-11-25T10:00:00.123Z".into(),
            idempotency_token: None,
            params: Params::from_pairs([
                ("EventType", "onParticipantAdded"),
                ("ConversationSid", "CH1"),
                ("MessagingBinding.Address", "+15551"),
                ("MessagingBinding.Address", "+15552"),
            ]),
        }
    }

    #[test]
    fn envelope_json_is_exact() {
        let json = String::from_utf8(sample().to_vec()).unwrap();
        assert_eq!(
            json,
            r#"{"event_type":"onParticipantAdded","account_sid":"AC123","received_at":"2026-11-25T10:00:00.123Z","idempotency_token":null,"params":{"ConversationSid":"CH1","EventType":"onParticipantAdded","MessagingBinding.Address":["+15551","+15552"]}}"#
        );
    }

    #[test]
    fn borrowed_envelope_json_is_exact() {
        let pairs = [
            ("MessagingBinding.Address", "+15551"),
            ("EventType", "onParticipantAdded"),
            ("MessagingBinding.Address", "+15552"),
            ("ConversationSid", "CH1"),
        ];
        let borrowed = EnvelopeRef {
            event_type: "onParticipantAdded",
            account_sid: Some("AC123"),
            received_at: "2026-11-25T10:00:00.123Z",
            idempotency_token: None,
            params: &pairs,
        };
        assert_eq!(
            String::from_utf8(borrowed.to_vec()).unwrap(),
            r#"{"event_type":"onParticipantAdded","account_sid":"AC123","received_at":"2026-11-25T10:00:00.123Z","idempotency_token":null,"params":{"ConversationSid":"CH1","EventType":"onParticipantAdded","MessagingBinding.Address":["+15551","+15552"]}}"#
        );
    }

    #[test]
    fn selective_decoding_refuses_what_full_decoding_refuses() {
        let head = r#""event_type":"e","received_at":"t""#;
        let cases = [
            format!("{{{head},\"params\":{{}}}}"),
            format!("{{{head},\"params\":{{\"A\":\"1\",\"B\":[\"1\",\"2\"]}}}}"),
            format!("{{{head},\"params\":{{\"B\":5}}}}"),
            format!("{{{head},\"params\":{{\"B\":[5]}}}}"),
            format!("{{{head},\"params\":{{\"B\":[[\"x\"]]}}}}"),
            format!("{{{head},\"params\":{{\"B\":null}}}}"),
            format!("{{{head},\"params\":{{\"A\":{{}}}}}}"),
            format!("{{{head},\"params\":[]}}"),
            format!("{{{head}}}"),
            r#"{"event_type":"e","params":{}}"#.to_owned(),
            format!("{{{head},\"event_type\":\"f\",\"params\":{{}}}}"),
            format!("{{{head},\"account_sid\":null,\"account_sid\":null,\"params\":{{}}}}"),
            format!("{{{head},\"extra\":[1,{{}}],\"params\":{{}}}}"),
            format!("{{{head},\"account_sid\":7,\"params\":{{}}}}"),
            format!("{{{head},\"params\":{{}}}} trailing"),
            format!("{{{head},\"params\":{{\"B\":\"\\u00e9\\n\"}}}}"),
        ];
        for case in &cases {
            let full = Envelope::from_slice(case.as_bytes());
            let selective = Envelope::from_slice_with_params(case.as_bytes(), &["A"]);
            assert_eq!(selective.is_ok(), full.is_ok(), "{case}");
            if let Ok(mut full) = full {
                full.params.0.retain(|name, _| name == "A");
                assert_eq!(selective.unwrap(), full, "{case}");
            }
        }
    }

    #[test]
    fn envelope_round_trips() {
        let envelope = sample();
        assert_eq!(Envelope::from_slice(&envelope.to_vec()).unwrap(), envelope);
    }

    #[test]
    fn repeated_names_keep_every_value_in_order() {
        let params = Params::from_pairs([("A", "2"), ("A", "1"), ("A", "3"), ("B", "")]);
        assert_eq!(params.get_all("A").collect::<Vec<_>>(), ["2", "1", "3"]);
        assert_eq!(params.get("A"), Some("2"));
        assert_eq!(params.get("B"), Some(""));
        assert_eq!(params.non_empty("B"), None);
        assert_eq!(params.get_all("C").count(), 0);
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn conversation_sid_ignores_empty() {
        let mut envelope = sample();
        assert_eq!(envelope.conversation_sid(), Some("CH1"));
        envelope.params = Params::from_pairs([("ConversationSid", "")]);
        assert_eq!(envelope.conversation_sid(), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever bytes decode as an envelope encode to bytes that decode to the same one:
        /// nothing a producer sends is changed by passing through a consumer that re-encodes it.
        #[test]
        fn what_decodes_survives_re_encoding(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(envelope) = Envelope::from_slice(&bytes) {
                prop_assert_eq!(Envelope::from_slice(&envelope.to_vec()).unwrap(), envelope);
            }
        }

        /// decode(encode(e)) = e for any envelope: any strings (unicode, quotes, control
        /// characters), repeated names, absent account and token.
        #[test]
        fn envelopes_round_trip(
            event_type in ".{0,24}",
            account in proptest::option::of(".{0,34}"),
            received_at in ".{0,24}",
            token in proptest::option::of(".{0,64}"),
            pairs in proptest::collection::vec(("[A-Ca-c.]{1,3}|.{1,12}", ".{0,24}"), 0..24),
        ) {
            let envelope = Envelope {
                event_type,
                account_sid: account,
                received_at,
                idempotency_token: token,
                params: Params::from_pairs(pairs),
            };
            prop_assert_eq!(Envelope::from_slice(&envelope.to_vec()).unwrap(), envelope);
        }

        /// Decoding only some parameters gives the full decoding with the others removed.
        #[test]
        fn selective_decoding_matches(pairs in proptest::collection::vec(("[A-Ca-c.]{1,2}", ".{0,8}"), 0..24), wanted in proptest::collection::vec("[A-Ca-c.]{1,2}", 0..4)) {
            let envelope = Envelope {
                event_type: "onConversationAdd".into(),
                account_sid: None,
                received_at: "2026-11-25T10:00:00.000Z".into(),
                idempotency_token: Some("t".into()),
                params: Params::from_pairs(pairs),
            };
            let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
            let mut expected = envelope.clone();
            expected.params.0.retain(|name, _| wanted.contains(&name.as_str()));
            prop_assert_eq!(Envelope::from_slice_with_params(&envelope.to_vec(), &wanted).unwrap(), expected);
        }

        /// Whatever the bytes, selective decoding fails exactly when full decoding fails.
        #[test]
        fn selective_decoding_refuses_what_full_decoding_refuses(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            prop_assert_eq!(
                Envelope::from_slice_with_params(&bytes, &["A"]).is_ok(),
                Envelope::from_slice(&bytes).is_ok()
            );
        }

        /// The borrowed encoder writes exactly what the owned envelope writes.
        #[test]
        fn borrowed_encoding_matches(pairs in proptest::collection::vec(("[A-Ca-c.]{1,3}", ".{0,8}"), 0..24), token in proptest::option::of("[a-z0-9\"-]{1,16}"), account in proptest::option::of(".{0,6}")) {
            let owned = Envelope {
                event_type: "onMessageAdded".into(),
                account_sid: account.clone(),
                received_at: "2026-11-25T10:00:00.000Z".into(),
                idempotency_token: token.clone(),
                params: Params::from_pairs(pairs.clone()),
            };
            let borrowed = EnvelopeRef {
                event_type: "onMessageAdded",
                account_sid: account.as_deref(),
                received_at: "2026-11-25T10:00:00.000Z",
                idempotency_token: token.as_deref(),
                params: &pairs,
            };
            prop_assert_eq!(String::from_utf8(borrowed.to_vec()).unwrap(), String::from_utf8(owned.to_vec()).unwrap());
        }
    }
}
