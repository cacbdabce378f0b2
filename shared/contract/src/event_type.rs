//! The Conversations event types Twilio sends, and whether each blocks the action (pre) or
//! notifies after it (post). An `EventType` outside this table is never trusted as a subject
//! token: [`EventType::parse`] returns `None` and the caller treats it as unknown.

use std::fmt;

/// Whether an event blocks the action until answered, or notifies after it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Pre-action: answered within Twilio's 5 s budget; the answer may modify or reject.
    Pre,
    /// Post-action: a notification, stored durably.
    Post,
}

macro_rules! event_types {
    ($( $variant:ident => $name:literal, $kind:ident; )*) => {
        /// A known Twilio Conversations webhook event type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $( #[doc = concat!("`", $name, "`")] $variant, )*
        }

        impl EventType {
            /// Every known event type, pre-action ones first.
            pub const ALL: &'static [EventType] = &[ $( EventType::$variant, )* ];

            /// The name exactly as Twilio sends it in `EventType`.
            pub const fn as_str(self) -> &'static str {
                match self { $( EventType::$variant => $name, )* }
            }

            /// Pre-action (blocking) or post-action (notification).
            pub const fn kind(self) -> EventKind {
                match self { $( EventType::$variant => EventKind::$kind, )* }
            }

            /// The known event type with exactly this name (case-sensitive, as Twilio sends it).
            pub fn parse(name: &str) -> Option<EventType> {
                match name { $( $name => Some(EventType::$variant), )* _ => None }
            }
        }
    };
}

event_types! {
    MessageAdd => "onMessageAdd", Pre;
    MessageUpdate => "onMessageUpdate", Pre;
    MessageRemove => "onMessageRemove", Pre;
    ConversationAdd => "onConversationAdd", Pre;
    ConversationUpdate => "onConversationUpdate", Pre;
    ConversationRemove => "onConversationRemove", Pre;
    ParticipantAdd => "onParticipantAdd", Pre;
    ParticipantUpdate => "onParticipantUpdate", Pre;
    ParticipantRemove => "onParticipantRemove", Pre;
    UserUpdate => "onUserUpdate", Pre;
    MessageAdded => "onMessageAdded", Post;
    MessageUpdated => "onMessageUpdated", Post;
    MessageRemoved => "onMessageRemoved", Post;
    ConversationAdded => "onConversationAdded", Post;
    ConversationUpdated => "onConversationUpdated", Post;
    ConversationRemoved => "onConversationRemoved", Post;
    ParticipantAdded => "onParticipantAdded", Post;
    ParticipantUpdated => "onParticipantUpdated", Post;
    ParticipantRemoved => "onParticipantRemoved", Post;
    UserUpdated => "onUserUpdated", Post;
    ConversationStateUpdated => "onConversationStateUpdated", Post;
    DeliveryUpdated => "onDeliveryUpdated", Post;
    UserAdded => "onUserAdded", Post;
}

impl EventType {
    /// How the ingress treats an `EventType` parameter: known pre-events are asked of the
    /// resolvers; known post-events and everything unknown are stored.
    pub fn kind_of(name: &str) -> EventKind {
        EventType::parse(name).map_or(EventKind::Post, EventType::kind)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRE: [&str; 10] = [
        "onMessageAdd",
        "onMessageUpdate",
        "onMessageRemove",
        "onConversationAdd",
        "onConversationUpdate",
        "onConversationRemove",
        "onParticipantAdd",
        "onParticipantUpdate",
        "onParticipantRemove",
        "onUserUpdate",
    ];
    const POST: [&str; 13] = [
        "onMessageAdded",
        "onMessageUpdated",
        "onMessageRemoved",
        "onConversationAdded",
        "onConversationUpdated",
        "onConversationRemoved",
        "onParticipantAdded",
        "onParticipantUpdated",
        "onParticipantRemoved",
        "onUserUpdated",
        "onConversationStateUpdated",
        "onDeliveryUpdated",
        "onUserAdded",
    ];

    #[test]
    fn classifies_all_23_event_types() {
        assert_eq!(EventType::ALL.len(), 23);
        for name in PRE {
            let event = EventType::parse(name).expect(name);
            assert_eq!(event.kind(), EventKind::Pre, "{name}");
            assert_eq!(event.as_str(), name);
        }
        for name in POST {
            let event = EventType::parse(name).expect(name);
            assert_eq!(event.kind(), EventKind::Post, "{name}");
            assert_eq!(event.to_string(), name);
        }
    }

    #[test]
    fn unknown_names_are_not_trusted() {
        for name in [
            "",
            "onmessageadd",
            "onMessageAdd ",
            "frontline.>",
            "onFoo",
            "ONMESSAGEADD",
        ] {
            assert_eq!(EventType::parse(name), None, "{name:?}");
            assert_eq!(EventType::kind_of(name), EventKind::Post, "{name:?}");
        }
        assert_eq!(EventType::kind_of("onUserUpdate"), EventKind::Pre);
    }
}
