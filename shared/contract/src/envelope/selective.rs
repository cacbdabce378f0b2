//! The seeds behind [`Envelope::from_slice_with_params`]: the envelope decoded with only the
//! wanted parameters kept, the others checked as the full decoder checks them but not copied.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::{Envelope, ParamValue, Params};

/// The envelope's fields; anything else is skipped, as the derived decoder does.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    EventType,
    AccountSid,
    ReceivedAt,
    IdempotencyToken,
    Params,
    #[serde(other)]
    Other,
}

pub(super) struct EnvelopeSeed<'w>(pub(super) &'w [&'w str]);

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Envelope, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        // The optional fields are `Some(None)` once seen as `null`, so a repeat is caught.
        let (mut event_type, mut account_sid, mut received_at) = (None, None, None);
        let (mut idempotency_token, mut params) = (None, None);
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::EventType => once(&mut event_type, "event_type", map.next_value()?)?,
                Field::AccountSid => once(&mut account_sid, "account_sid", map.next_value()?)?,
                Field::ReceivedAt => once(&mut received_at, "received_at", map.next_value()?)?,
                Field::IdempotencyToken => {
                    once(
                        &mut idempotency_token,
                        "idempotency_token",
                        map.next_value()?,
                    )?;
                }
                Field::Params => {
                    once(
                        &mut params,
                        "params",
                        map.next_value_seed(ParamsSeed(self.0))?,
                    )?;
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            event_type: event_type.ok_or_else(|| de::Error::missing_field("event_type"))?,
            account_sid: account_sid.flatten(),
            received_at: received_at.ok_or_else(|| de::Error::missing_field("received_at"))?,
            idempotency_token: idempotency_token.flatten(),
            params: params.ok_or_else(|| de::Error::missing_field("params"))?,
        })
    }
}

/// Fills `slot` with the value of field `name`, refusing a field given twice (as the derived
/// decoder does).
fn once<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
    match slot.replace(value) {
        Some(_) => Err(E::duplicate_field(name)),
        None => Ok(()),
    }
}

struct ParamsSeed<'w>(&'w [&'w str]);

impl<'de> DeserializeSeed<'de> for ParamsSeed<'_> {
    type Value = Params;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Params, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed<'_> {
    type Value = Params;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of parameters")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
        let mut kept = BTreeMap::new();
        while let Some(wanted) = map.next_key_seed(NameSeed(self.0))? {
            match wanted {
                Some(name) => {
                    kept.insert(name.to_owned(), map.next_value::<ParamValue>()?);
                }
                // Still checked (a string or an array of strings), as the full decoder
                // does, but not copied.
                None => map.next_value::<Skipped>().map(|_| ())?,
            }
        }
        Ok(Params(kept))
    }
}

/// A parameter value that is not kept: a string or an array of strings, checked, not copied.
struct Skipped;

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Skipped, D::Error> {
        d.deserialize_any(SkippedVisitor { nested: false })
    }
}

struct SkippedVisitor {
    nested: bool,
}

impl<'de> Visitor<'de> for SkippedVisitor {
    type Value = Skipped;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.nested {
            "a string"
        } else {
            "a string or an array of strings"
        })
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skipped, A::Error> {
        if self.nested {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        while seq.next_element::<Element>()?.is_some() {}
        Ok(Skipped)
    }
}

/// One element of a skipped array: a string.
struct Element;

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Element, D::Error> {
        d.deserialize_str(SkippedVisitor { nested: true })
            .map(|_| Element)
    }
}

/// A parameter name: the wanted name it equals, or `None`, without copying it.
struct NameSeed<'w>(&'w [&'w str]);

impl<'de, 'w> DeserializeSeed<'de> for NameSeed<'w> {
    type Value = Option<&'w str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'w> Visitor<'de> for NameSeed<'w> {
    type Value = Option<&'w str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a parameter name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().find(|wanted| **wanted == name).copied())
    }
}
