//! NATS subject builders and the names every deployment shares.
//!
//! Subjects are `<prefix>.pre.<EventType>.<ConversationSid or _>`,
//! `<prefix>.post.<EventType or unknown>.<ConversationSid or _>` and
//! `<prefix>.dlq.<consumer>.<EventType>`. A token is taken from a webhook parameter only when it
//! matches `[A-Za-z0-9_-]{1,64}`, so no parameter can add a token or a wildcard.

use crate::callback::CallbackRoute;
use crate::event_type::EventType;

/// The default first token of every subject (`SUBJECT_PREFIX`).
pub const DEFAULT_PREFIX: &str = "frontline";
/// The queue group every resolver joins for pre-event requests.
pub const QUEUE_GROUP: &str = "frontline-resolvers";
/// The default stream of post-events (`STREAM_NAME`).
pub const DEFAULT_STREAM: &str = "FRONTLINE_EVENTS";
/// The stream of dead letters.
pub const DLQ_STREAM: &str = "FRONTLINE_DLQ";
/// The resolvers' shared durable consumer on the post-event stream.
pub const RESOLVER_CONSUMER: &str = "frontline-resolver";
/// The resolvers' shared durable consumer of routing callbacks.
pub const ROUTER_CONSUMER: &str = "frontline-router";
/// The token standing for a missing or unusable value.
pub const PLACEHOLDER: &str = "_";
/// The event-type token of post-events whose type is not in the known table.
pub const UNKNOWN: &str = "unknown";

/// `value` when it is a safe subject token (`[A-Za-z0-9_-]{1,64}`), else `_`.
pub fn token(value: Option<&str>) -> &str {
    match value {
        Some(value) if is_token(value) => value,
        _ => PLACEHOLDER,
    }
}

/// Whether `value` may stand as a subject token as it is.
pub fn is_token(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Builds the subjects of one deployment (one `SUBJECT_PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Default for Subjects {
    fn default() -> Self {
        Subjects {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl Subjects {
    /// Subjects under `prefix`, which must itself be a token.
    ///
    /// # Errors
    /// When `prefix` is not a safe subject token.
    pub fn new(prefix: &str) -> Result<Subjects, String> {
        if is_token(prefix) {
            Ok(Subjects {
                prefix: prefix.to_owned(),
            })
        } else {
            Err(format!(
                "subject prefix {prefix:?} must match [A-Za-z0-9_-]{{1,64}}"
            ))
        }
    }

    /// The first token.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>.pre.<EventType>.<ConversationSid or _>`.
    pub fn pre(&self, event: EventType, conversation_sid: Option<&str>) -> String {
        format!(
            "{}.pre.{}.{}",
            self.prefix,
            event.as_str(),
            token(conversation_sid)
        )
    }

    /// `<prefix>.post.<EventType or unknown>.<ConversationSid or _>`; `None` is an unknown type.
    pub fn post(&self, event: Option<EventType>, conversation_sid: Option<&str>) -> String {
        let event = event.map_or(UNKNOWN, EventType::as_str);
        format!("{}.post.{}.{}", self.prefix, event, token(conversation_sid))
    }

    /// `<prefix>.post.<EventType>.>`: every stored event of one type, for a consumer's filter.
    pub fn post_filter(&self, event: EventType) -> String {
        format!("{}.post.{}.>", self.prefix, event.as_str())
    }

    /// `<prefix>.dlq.<consumer>.<EventType>`.
    pub fn dlq(&self, consumer: &str, event_type: &str) -> String {
        let event = EventType::parse(event_type).map_or(UNKNOWN, EventType::as_str);
        format!("{}.dlq.{}.{}", self.prefix, token(Some(consumer)), event)
    }

    /// `<prefix>.callback.<route>.<Location or _>`: a synchronous Frontline callback.
    pub fn callback(&self, route: CallbackRoute, location: Option<&str>) -> String {
        format!(
            "{}.callback.{}.{}",
            self.prefix,
            route.as_str(),
            token(location)
        )
    }

    /// Every synchronous callback: what the resolvers subscribe to.
    pub fn callback_wildcard(&self) -> String {
        format!("{}.callback.>", self.prefix)
    }

    /// `<prefix>.routing.<ConversationSid or _>`: a stored routing callback.
    pub fn routing(&self, conversation_sid: Option<&str>) -> String {
        format!("{}.routing.{}", self.prefix, token(conversation_sid))
    }

    /// Every stored routing callback: part of the stream's subjects, the router's filter.
    pub fn routing_wildcard(&self) -> String {
        format!("{}.routing.>", self.prefix)
    }

    /// The route and `Location` token of a subject built by [`Subjects::callback`].
    pub fn parse_callback<'s>(&self, subject: &'s str) -> Option<(CallbackRoute, &'s str)> {
        let rest = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".callback.")?;
        let (route, location) = rest.split_once('.')?;
        if !is_token(location) {
            return None;
        }
        Some((CallbackRoute::parse(route)?, location))
    }

    /// Every pre-event request: what the resolvers subscribe to.
    pub fn pre_wildcard(&self) -> String {
        format!("{}.pre.>", self.prefix)
    }

    /// Every stored post-event: the stream's subjects.
    pub fn post_wildcard(&self) -> String {
        format!("{}.post.>", self.prefix)
    }

    /// Every dead letter: the dead-letter stream's subjects.
    pub fn dlq_wildcard(&self) -> String {
        format!("{}.dlq.>", self.prefix)
    }

    /// The tokens of a subject this deployment built with [`Subjects::pre`] or
    /// [`Subjects::post`], read back: the event type (`None` for `unknown` or a name outside the
    /// table) and the conversation token (`None` for `_`). `None` for any other subject.
    pub fn parse<'s>(&self, subject: &'s str) -> Option<ParsedSubject<'s>> {
        let rest = subject
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('.')?;
        let mut tokens = rest.split('.');
        let kind = match tokens.next()? {
            "pre" => SubjectKind::Pre,
            "post" => SubjectKind::Post,
            _ => return None,
        };
        let (event, conversation) = (tokens.next()?, tokens.next()?);
        if tokens.next().is_some() || !is_token(event) || !is_token(conversation) {
            return None;
        }
        Some(ParsedSubject {
            kind,
            event_type: EventType::parse(event),
            conversation_sid: (conversation != PLACEHOLDER).then_some(conversation),
        })
    }
}

/// Which path a parsed subject belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    /// `<prefix>.pre.…`: a request to the resolvers.
    Pre,
    /// `<prefix>.post.…`: a stored event.
    Post,
}

/// A pre- or post-event subject read back by [`Subjects::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedSubject<'s> {
    /// Pre or post.
    pub kind: SubjectKind,
    /// The event type, when it is one of the known table.
    pub event_type: Option<EventType>,
    /// The conversation token, unless it was the placeholder `_`.
    pub conversation_sid: Option<&'s str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_sanitised() {
        assert_eq!(token(Some("CH0123abc_-")), "CH0123abc_-");
        let long = "a".repeat(64);
        assert_eq!(token(Some(&long)), long);
        for bad in ["", "a.b", "*", ">", "a b", "ñ", &"a".repeat(65), "CH1\r\n"] {
            assert_eq!(token(Some(bad)), "_", "{bad:?}");
        }
        assert_eq!(token(None), "_");
    }

    #[test]
    fn subjects_are_built_as_specified() {
        let subjects = Subjects::default();
        assert_eq!(
            subjects.pre(EventType::ConversationAdd, None),
            "frontline.pre.onConversationAdd._"
        );
        assert_eq!(
            subjects.post(Some(EventType::ParticipantAdded), Some("CH9")),
            "frontline.post.onParticipantAdded.CH9"
        );
        assert_eq!(
            subjects.post(None, Some("CH.>")),
            "frontline.post.unknown._"
        );
        assert_eq!(
            subjects.dlq(RESOLVER_CONSUMER, "onParticipantAdded"),
            "frontline.dlq.frontline-resolver.onParticipantAdded"
        );
        assert_eq!(subjects.dlq("c", "on.*"), "frontline.dlq.c.unknown");
        let other = Subjects::new("acme").unwrap();
        assert_eq!(other.pre_wildcard(), "acme.pre.>");
        assert_eq!(other.post_wildcard(), "acme.post.>");
        assert_eq!(other.dlq_wildcard(), "acme.dlq.>");
        assert!(Subjects::new("a.b").is_err());
        assert!(Subjects::new("").is_err());
    }

    #[test]
    fn subjects_parse_back_to_what_built_them() {
        let subjects = Subjects::new("acme").unwrap();
        for event in EventType::ALL {
            for sid in [None, Some("CH9")] {
                let built = match event.kind() {
                    crate::EventKind::Pre => subjects.pre(*event, sid),
                    crate::EventKind::Post => subjects.post(Some(*event), sid),
                };
                let parsed = subjects.parse(&built).unwrap();
                assert_eq!(parsed.event_type, Some(*event), "{built}");
                assert_eq!(parsed.conversation_sid, sid, "{built}");
                let kind = match event.kind() {
                    crate::EventKind::Pre => SubjectKind::Pre,
                    crate::EventKind::Post => SubjectKind::Post,
                };
                assert_eq!(parsed.kind, kind);
            }
        }
        let built = subjects.post(None, Some("CH1"));
        let unknown = subjects.parse(&built).unwrap();
        assert_eq!(
            (unknown.event_type, unknown.conversation_sid),
            (None, Some("CH1"))
        );
    }

    #[test]
    fn callback_subjects_are_built_and_parsed() {
        let subjects = Subjects::default();
        let built = subjects.callback(CallbackRoute::OutgoingConversation, Some("GetProxyAddress"));
        assert_eq!(
            built,
            "frontline.callback.outgoing-conversation.GetProxyAddress"
        );
        assert_eq!(
            subjects.parse_callback(&built),
            Some((CallbackRoute::OutgoingConversation, "GetProxyAddress"))
        );
        assert_eq!(
            subjects.callback(CallbackRoute::Crm, Some("a.b")),
            "frontline.callback.crm._"
        );
        assert_eq!(subjects.routing(Some("CH1")), "frontline.routing.CH1");
        assert_eq!(subjects.routing(Some("CH.>")), "frontline.routing._");
        assert_eq!(subjects.callback_wildcard(), "frontline.callback.>");
        assert_eq!(subjects.routing_wildcard(), "frontline.routing.>");
        for foreign in [
            "frontline.callback.routing.X",
            "frontline.callback.crm",
            "frontline.callback.crm.a.b",
            "acme.callback.crm.X",
        ] {
            assert_eq!(subjects.parse_callback(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn foreign_subjects_do_not_parse() {
        let subjects = Subjects::default();
        for foreign in [
            "acme.pre.onMessageAdd._",
            "frontline.pre.onMessageAdd",
            "frontline.pre.onMessageAdd._.extra",
            "frontline.dlq.c.onMessageAdd",
            "frontlinex.pre.onMessageAdd._",
            "frontline.pre.*._",
            "frontline.pre..CH1",
            "frontline",
            "",
        ] {
            assert_eq!(subjects.parse(foreign), None, "{foreign}");
        }
    }
}
