//! Typed Conversations events for Rust consumers: [`ConversationEvent`] is parsed from an
//! [`Envelope`], one variant per event type with the parameters of Twilio's documentation as
//! typed fields, so a consumer never handles raw parameter strings. Parameters Twilio adds
//! without notice are kept in each event's `extra`; an event type outside the table is
//! [`ConversationEvent::Unknown`] with all its parameters.

use crate::envelope::{Envelope, ParamValue, Params};
use crate::event_type::EventType;

/// Parameters every webhook carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Common {
    /// `AccountSid`.
    pub account_sid: Option<String>,
    /// `Source`: `SDK`, `API`, `SMS`, ...
    pub source: Option<String>,
    /// `ClientIdentity` (SDK actions).
    pub client_identity: Option<String>,
    /// `RetryCount`.
    pub retry_count: Option<u32>,
}

/// The channel of a messaging binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingType {
    /// SMS or MMS.
    Sms,
    /// WhatsApp.
    Whatsapp,
    /// A chat (SDK) participant.
    Chat,
    /// Anything else, as sent.
    Other(String),
}

impl BindingType {
    fn parse(value: &str) -> BindingType {
        // Twilio's documentation and traffic disagree on case: compare without it.
        match value.to_ascii_lowercase().as_str() {
            "sms" => BindingType::Sms,
            "whatsapp" => BindingType::Whatsapp,
            "chat" => BindingType::Chat,
            _ => BindingType::Other(value.to_owned()),
        }
    }
}

/// The `MessagingBinding.*` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagingBinding {
    /// `MessagingBinding.Address`: the customer's address(es); several for group MMS.
    pub address: Vec<String>,
    /// `MessagingBinding.ProxyAddress`: the Twilio number.
    pub proxy_address: Option<String>,
    /// `MessagingBinding.ProjectedAddress`.
    pub projected_address: Option<String>,
    /// `MessagingBinding.AuthorAddress` (group MMS).
    pub author_address: Option<String>,
    /// `MessagingBinding.Type`.
    pub kind: Option<BindingType>,
}

/// `onConversation*` events (not `onConversationStateUpdated`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// Common parameters.
    pub common: Common,
    /// `ConversationSid` (absent on `onConversationAdd`).
    pub conversation_sid: Option<String>,
    /// `FriendlyName`.
    pub friendly_name: Option<String>,
    /// `UniqueName`.
    pub unique_name: Option<String>,
    /// `Attributes` (a JSON document).
    pub attributes: Option<String>,
    /// `ChatServiceSid`.
    pub chat_service_sid: Option<String>,
    /// `MessagingServiceSid`.
    pub messaging_service_sid: Option<String>,
    /// `State`.
    pub state: Option<String>,
    /// `MessagingBinding.*`.
    pub messaging_binding: MessagingBinding,
    /// `MessageBody` (`onConversationAdd`).
    pub message_body: Option<String>,
    /// `Media` (a JSON document).
    pub media: Option<String>,
    /// `DateCreated`.
    pub date_created: Option<String>,
    /// `DateUpdated`.
    pub date_updated: Option<String>,
    /// `DateRemoved`.
    pub date_removed: Option<String>,
    /// Parameters not listed above.
    pub extra: Params,
}

/// `onConversationStateUpdated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateUpdate {
    /// Common parameters.
    pub common: Common,
    /// `ConversationSid`.
    pub conversation_sid: Option<String>,
    /// `ChatServiceSid`.
    pub chat_service_sid: Option<String>,
    /// `MessagingServiceSid`.
    pub messaging_service_sid: Option<String>,
    /// `StateUpdated`.
    pub state_updated: Option<String>,
    /// `StateFrom`.
    pub state_from: Option<String>,
    /// `StateTo`.
    pub state_to: Option<String>,
    /// `Reason`: `API`, `TIMER`, `EVENT`.
    pub reason: Option<String>,
    /// Parameters not listed above.
    pub extra: Params,
}

/// `onMessage*` events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Common parameters.
    pub common: Common,
    /// `ConversationSid`.
    pub conversation_sid: Option<String>,
    /// `MessageSid` (absent on `onMessageAdd`).
    pub message_sid: Option<String>,
    /// `Index`.
    pub index: Option<u64>,
    /// `Body`.
    pub body: Option<String>,
    /// `Author`.
    pub author: Option<String>,
    /// `ParticipantSid`.
    pub participant_sid: Option<String>,
    /// `Attributes` (a JSON document).
    pub attributes: Option<String>,
    /// `Media` (a JSON document).
    pub media: Option<String>,
    /// `ChatServiceSid`.
    pub chat_service_sid: Option<String>,
    /// `MessagingServiceSid`.
    pub messaging_service_sid: Option<String>,
    /// `DateCreated`.
    pub date_created: Option<String>,
    /// `DateUpdated`.
    pub date_updated: Option<String>,
    /// `DateRemoved`.
    pub date_removed: Option<String>,
    /// Parameters not listed above.
    pub extra: Params,
}

/// `onParticipant*` events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Participant {
    /// Common parameters.
    pub common: Common,
    /// `ConversationSid`.
    pub conversation_sid: Option<String>,
    /// `ParticipantSid` (absent on `onParticipantAdd`).
    pub participant_sid: Option<String>,
    /// `Identity` (chat participants).
    pub identity: Option<String>,
    /// `RoleSid`.
    pub role_sid: Option<String>,
    /// `Attributes` (a JSON document).
    pub attributes: Option<String>,
    /// `MessagingBinding.*` (SMS/WhatsApp participants).
    pub messaging_binding: MessagingBinding,
    /// `LastReadMessageIndex`.
    pub last_read_message_index: Option<u64>,
    /// `DateCreated`.
    pub date_created: Option<String>,
    /// `DateUpdated`.
    pub date_updated: Option<String>,
    /// `DateRemoved`.
    pub date_removed: Option<String>,
    /// Parameters not listed above.
    pub extra: Params,
}

/// `onDeliveryUpdated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Common parameters.
    pub common: Common,
    /// `ConversationSid`.
    pub conversation_sid: Option<String>,
    /// `ChatServiceSid`.
    pub chat_service_sid: Option<String>,
    /// `MessageSid`.
    pub message_sid: Option<String>,
    /// `DeliveryReceiptSid`.
    pub delivery_receipt_sid: Option<String>,
    /// `ChannelMessageSid`.
    pub channel_message_sid: Option<String>,
    /// `ParticipantSid`.
    pub participant_sid: Option<String>,
    /// `Status`: `read`, `failed`, `delivered`, `undelivered`, `sent`.
    pub status: Option<String>,
    /// `ErrorCode`.
    pub error_code: Option<String>,
    /// `DateCreated`.
    pub date_created: Option<String>,
    /// `DateUpdated`.
    pub date_updated: Option<String>,
    /// Parameters not listed above.
    pub extra: Params,
}

/// `onUser*` events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// Common parameters.
    pub common: Common,
    /// `ChatServiceSid`.
    pub chat_service_sid: Option<String>,
    /// `UserSid`.
    pub user_sid: Option<String>,
    /// `Identity`.
    pub identity: Option<String>,
    /// `RoleSid`.
    pub role_sid: Option<String>,
    /// `Attributes` (a JSON document).
    pub attributes: Option<String>,
    /// `FriendlyName`.
    pub friendly_name: Option<String>,
    /// `isOnline`.
    pub is_online: Option<bool>,
    /// `isNotifiable`.
    pub is_notifiable: Option<bool>,
    /// `DateCreated`.
    pub date_created: Option<String>,
    /// `DateUpdated`.
    pub date_updated: Option<String>,
    /// Parameters not listed above.
    pub extra: Params,
}

/// A Conversations event with typed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ConversationEvent {
    MessageAdd(Message),
    MessageUpdate(Message),
    MessageRemove(Message),
    MessageAdded(Message),
    MessageUpdated(Message),
    MessageRemoved(Message),
    ConversationAdd(Conversation),
    ConversationUpdate(Conversation),
    ConversationRemove(Conversation),
    ConversationAdded(Conversation),
    ConversationUpdated(Conversation),
    ConversationRemoved(Conversation),
    ConversationStateUpdated(StateUpdate),
    ParticipantAdd(Participant),
    ParticipantUpdate(Participant),
    ParticipantRemove(Participant),
    ParticipantAdded(Participant),
    ParticipantUpdated(Participant),
    ParticipantRemoved(Participant),
    DeliveryUpdated(Delivery),
    UserAdded(User),
    UserUpdate(User),
    UserUpdated(User),
    /// An `EventType` outside Twilio's table, with every parameter.
    Unknown {
        /// The `EventType` as sent.
        event_type: String,
        /// Common parameters.
        common: Common,
        /// The other parameters.
        extra: Params,
    },
}

impl ConversationEvent {
    /// Parses the envelope's parameters.
    pub fn from_envelope(envelope: &Envelope) -> ConversationEvent {
        let mut taker = Taker(envelope.params.clone());
        taker.0.remove("EventType");
        let common = Common {
            account_sid: taker.one("AccountSid"),
            source: taker.one("Source"),
            client_identity: taker.one("ClientIdentity"),
            retry_count: taker.parsed("RetryCount"),
        };
        use ConversationEvent as E;
        use EventType as T;
        let Some(event) = EventType::parse(&envelope.event_type) else {
            return E::Unknown {
                event_type: envelope.event_type.clone(),
                common,
                extra: taker.0,
            };
        };
        match event {
            T::MessageAdd => E::MessageAdd(message(common, taker)),
            T::MessageUpdate => E::MessageUpdate(message(common, taker)),
            T::MessageRemove => E::MessageRemove(message(common, taker)),
            T::MessageAdded => E::MessageAdded(message(common, taker)),
            T::MessageUpdated => E::MessageUpdated(message(common, taker)),
            T::MessageRemoved => E::MessageRemoved(message(common, taker)),
            T::ConversationAdd => E::ConversationAdd(conversation(common, taker)),
            T::ConversationUpdate => E::ConversationUpdate(conversation(common, taker)),
            T::ConversationRemove => E::ConversationRemove(conversation(common, taker)),
            T::ConversationAdded => E::ConversationAdded(conversation(common, taker)),
            T::ConversationUpdated => E::ConversationUpdated(conversation(common, taker)),
            T::ConversationRemoved => E::ConversationRemoved(conversation(common, taker)),
            T::ConversationStateUpdated => E::ConversationStateUpdated(state_update(common, taker)),
            T::ParticipantAdd => E::ParticipantAdd(participant(common, taker)),
            T::ParticipantUpdate => E::ParticipantUpdate(participant(common, taker)),
            T::ParticipantRemove => E::ParticipantRemove(participant(common, taker)),
            T::ParticipantAdded => E::ParticipantAdded(participant(common, taker)),
            T::ParticipantUpdated => E::ParticipantUpdated(participant(common, taker)),
            T::ParticipantRemoved => E::ParticipantRemoved(participant(common, taker)),
            T::DeliveryUpdated => E::DeliveryUpdated(delivery(common, taker)),
            T::UserAdded => E::UserAdded(user(common, taker)),
            T::UserUpdate => E::UserUpdate(user(common, taker)),
            T::UserUpdated => E::UserUpdated(user(common, taker)),
        }
    }

    /// The event type, when known.
    pub fn event_type(&self) -> Option<EventType> {
        use ConversationEvent as E;
        use EventType as T;
        Some(match self {
            E::MessageAdd(_) => T::MessageAdd,
            E::MessageUpdate(_) => T::MessageUpdate,
            E::MessageRemove(_) => T::MessageRemove,
            E::MessageAdded(_) => T::MessageAdded,
            E::MessageUpdated(_) => T::MessageUpdated,
            E::MessageRemoved(_) => T::MessageRemoved,
            E::ConversationAdd(_) => T::ConversationAdd,
            E::ConversationUpdate(_) => T::ConversationUpdate,
            E::ConversationRemove(_) => T::ConversationRemove,
            E::ConversationAdded(_) => T::ConversationAdded,
            E::ConversationUpdated(_) => T::ConversationUpdated,
            E::ConversationRemoved(_) => T::ConversationRemoved,
            E::ConversationStateUpdated(_) => T::ConversationStateUpdated,
            E::ParticipantAdd(_) => T::ParticipantAdd,
            E::ParticipantUpdate(_) => T::ParticipantUpdate,
            E::ParticipantRemove(_) => T::ParticipantRemove,
            E::ParticipantAdded(_) => T::ParticipantAdded,
            E::ParticipantUpdated(_) => T::ParticipantUpdated,
            E::ParticipantRemoved(_) => T::ParticipantRemoved,
            E::DeliveryUpdated(_) => T::DeliveryUpdated,
            E::UserAdded(_) => T::UserAdded,
            E::UserUpdate(_) => T::UserUpdate,
            E::UserUpdated(_) => T::UserUpdated,
            E::Unknown { .. } => return None,
        })
    }
}

/// Takes typed parameters out of a copy of the envelope's; what remains is `extra`.
struct Taker(Params);

impl Taker {
    fn one(&mut self, name: &str) -> Option<String> {
        match self.0.remove(name)? {
            ParamValue::One(value) => Some(value),
            ParamValue::Many(mut values) => (!values.is_empty()).then(|| values.swap_remove(0)),
        }
    }

    fn all(&mut self, name: &str) -> Vec<String> {
        match self.0.remove(name) {
            Some(ParamValue::One(value)) => vec![value],
            Some(ParamValue::Many(values)) => values,
            None => Vec::new(),
        }
    }

    /// A parsed value; an unparsable one stays in `extra` under its name.
    fn parsed<T: std::str::FromStr>(&mut self, name: &str) -> Option<T> {
        let raw = self.0.remove(name)?;
        match raw.first().and_then(|value| value.trim().parse().ok()) {
            Some(value) => Some(value),
            None => {
                self.0.insert(name, raw);
                None
            }
        }
    }

    fn flag(&mut self, name: &str) -> Option<bool> {
        let value = self.one(name)?;
        Some(value.eq_ignore_ascii_case("true"))
    }

    fn binding(&mut self) -> MessagingBinding {
        MessagingBinding {
            address: self.all("MessagingBinding.Address"),
            proxy_address: self.one("MessagingBinding.ProxyAddress"),
            projected_address: self.one("MessagingBinding.ProjectedAddress"),
            author_address: self.one("MessagingBinding.AuthorAddress"),
            kind: self
                .one("MessagingBinding.Type")
                .map(|value| BindingType::parse(&value)),
        }
    }
}

fn message(common: Common, mut t: Taker) -> Message {
    Message {
        common,
        conversation_sid: t.one("ConversationSid"),
        message_sid: t.one("MessageSid"),
        index: t.parsed("Index"),
        body: t.one("Body"),
        author: t.one("Author"),
        participant_sid: t.one("ParticipantSid"),
        attributes: t.one("Attributes"),
        media: t.one("Media"),
        chat_service_sid: t.one("ChatServiceSid"),
        messaging_service_sid: t.one("MessagingServiceSid"),
        date_created: t.one("DateCreated"),
        date_updated: t.one("DateUpdated"),
        date_removed: t.one("DateRemoved"),
        extra: t.0,
    }
}

fn conversation(common: Common, mut t: Taker) -> Conversation {
    Conversation {
        common,
        conversation_sid: t.one("ConversationSid"),
        friendly_name: t.one("FriendlyName"),
        unique_name: t.one("UniqueName"),
        attributes: t.one("Attributes"),
        chat_service_sid: t.one("ChatServiceSid"),
        messaging_service_sid: t.one("MessagingServiceSid"),
        state: t.one("State"),
        messaging_binding: t.binding(),
        message_body: t.one("MessageBody"),
        media: t.one("Media"),
        date_created: t.one("DateCreated"),
        date_updated: t.one("DateUpdated"),
        date_removed: t.one("DateRemoved"),
        extra: t.0,
    }
}

fn state_update(common: Common, mut t: Taker) -> StateUpdate {
    StateUpdate {
        common,
        conversation_sid: t.one("ConversationSid"),
        chat_service_sid: t.one("ChatServiceSid"),
        messaging_service_sid: t.one("MessagingServiceSid"),
        state_updated: t.one("StateUpdated"),
        state_from: t.one("StateFrom"),
        state_to: t.one("StateTo"),
        reason: t.one("Reason"),
        extra: t.0,
    }
}

fn participant(common: Common, mut t: Taker) -> Participant {
    Participant {
        common,
        conversation_sid: t.one("ConversationSid"),
        participant_sid: t.one("ParticipantSid"),
        identity: t.one("Identity"),
        role_sid: t.one("RoleSid"),
        attributes: t.one("Attributes"),
        messaging_binding: t.binding(),
        last_read_message_index: t.parsed("LastReadMessageIndex"),
        date_created: t.one("DateCreated"),
        date_updated: t.one("DateUpdated"),
        date_removed: t.one("DateRemoved"),
        extra: t.0,
    }
}

fn delivery(common: Common, mut t: Taker) -> Delivery {
    Delivery {
        common,
        conversation_sid: t.one("ConversationSid"),
        chat_service_sid: t.one("ChatServiceSid"),
        message_sid: t.one("MessageSid"),
        delivery_receipt_sid: t.one("DeliveryReceiptSid"),
        channel_message_sid: t.one("ChannelMessageSid"),
        participant_sid: t.one("ParticipantSid"),
        status: t.one("Status"),
        error_code: t.one("ErrorCode"),
        date_created: t.one("DateCreated"),
        date_updated: t.one("DateUpdated"),
        extra: t.0,
    }
}

fn user(common: Common, mut t: Taker) -> User {
    User {
        common,
        chat_service_sid: t.one("ChatServiceSid"),
        user_sid: t.one("UserSid"),
        identity: t.one("Identity"),
        role_sid: t.one("RoleSid"),
        attributes: t.one("Attributes"),
        friendly_name: t.one("FriendlyName"),
        is_online: t.flag("isOnline"),
        is_notifiable: t.flag("isNotifiable"),
        date_created: t.one("DateCreated"),
        date_updated: t.one("DateUpdated"),
        extra: t.0,
    }
}

#[cfg(test)]
mod tests;
