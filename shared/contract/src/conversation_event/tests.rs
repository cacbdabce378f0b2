use super::*;

fn envelope(event_type: &str, params: &[(&str, &str)]) -> Envelope {
    let mut pairs = vec![
        ("EventType", event_type),
        ("AccountSid", "AC1"),
        ("Source", "SDK"),
        ("RetryCount", "0"),
    ];
    pairs.extend_from_slice(params);
    Envelope {
        event_type: event_type.to_owned(),
        account_sid: Some("AC1".into()),
        received_at: "2026-11-25T10:00:00.000Z".into(),
        idempotency_token: None,
        params: Params::from_pairs(pairs),
    }
}

#[test]
fn every_event_type_parses_to_its_variant() {
    for event in EventType::ALL {
        let parsed = ConversationEvent::from_envelope(&envelope(
            event.as_str(),
            &[("ConversationSid", "CH1")],
        ));
        assert_eq!(parsed.event_type(), Some(*event), "{event}");
        // The SID is a typed field wherever the event has one (users have none).
        let kept_extra = match &parsed {
            ConversationEvent::UserAdded(u)
            | ConversationEvent::UserUpdate(u)
            | ConversationEvent::UserUpdated(u) => u.extra.get("ConversationSid").is_some(),
            _ => false,
        };
        let name = event.as_str();
        assert!(name.starts_with("onUser") == kept_extra, "{name}");
    }
}

#[test]
fn message_fields_are_typed() {
    let parsed = ConversationEvent::from_envelope(&envelope(
        "onMessageAdded",
        &[
            ("ConversationSid", "CH1"),
            ("MessageSid", "IM1"),
            ("Index", "42"),
            ("Body", "hello"),
            ("Author", "+1555"),
            ("ChatServiceSid", "IS1"),
            ("BrandNewTwilioParam", "x"),
        ],
    ));
    let ConversationEvent::MessageAdded(message) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(message.common.account_sid.as_deref(), Some("AC1"));
    assert_eq!(message.common.retry_count, Some(0));
    assert_eq!(message.index, Some(42));
    assert_eq!(message.body.as_deref(), Some("hello"));
    assert_eq!(message.chat_service_sid.as_deref(), Some("IS1"));
    assert_eq!(message.extra.get("BrandNewTwilioParam"), Some("x"));
    assert_eq!(
        message.extra.len(),
        1,
        "known parameters are not repeated in extra"
    );
}

#[test]
fn unparsable_numbers_stay_in_extra() {
    let parsed =
        ConversationEvent::from_envelope(&envelope("onMessageAdd", &[("Index", "not-a-number")]));
    let ConversationEvent::MessageAdd(message) = parsed else {
        panic!()
    };
    assert_eq!(message.index, None);
    assert_eq!(message.extra.get("Index"), Some("not-a-number"));
}

#[test]
fn participant_binding_and_group_mms_addresses() {
    let parsed = ConversationEvent::from_envelope(&envelope(
        "onParticipantAdded",
        &[
            ("ParticipantSid", "MB1"),
            ("MessagingBinding.Address", "+1"),
            ("MessagingBinding.Address", "+2"),
            ("MessagingBinding.Type", "WHATSAPP"),
            ("LastReadMessageIndex", "7"),
        ],
    ));
    let ConversationEvent::ParticipantAdded(participant) = parsed else {
        panic!()
    };
    assert_eq!(participant.messaging_binding.address, ["+1", "+2"]);
    assert_eq!(
        participant.messaging_binding.kind,
        Some(BindingType::Whatsapp)
    );
    assert_eq!(participant.last_read_message_index, Some(7));
    assert_eq!(participant.identity, None);
}

#[test]
fn conversation_state_delivery_and_user_fields() {
    let state = ConversationEvent::from_envelope(&envelope(
        "onConversationStateUpdated",
        &[
            ("StateFrom", "active"),
            ("StateTo", "closed"),
            ("Reason", "TIMER"),
        ],
    ));
    let ConversationEvent::ConversationStateUpdated(state) = state else {
        panic!()
    };
    assert_eq!(
        (
            state.state_from.as_deref(),
            state.state_to.as_deref(),
            state.reason.as_deref()
        ),
        (Some("active"), Some("closed"), Some("TIMER"))
    );

    let delivery = ConversationEvent::from_envelope(&envelope(
        "onDeliveryUpdated",
        &[("Status", "failed"), ("ErrorCode", "30008")],
    ));
    let ConversationEvent::DeliveryUpdated(delivery) = delivery else {
        panic!()
    };
    assert_eq!(
        (delivery.status.as_deref(), delivery.error_code.as_deref()),
        (Some("failed"), Some("30008"))
    );

    let user = ConversationEvent::from_envelope(&envelope(
        "onUserUpdated",
        &[
            ("Identity", "agent"),
            ("isOnline", "true"),
            ("isNotifiable", "false"),
        ],
    ));
    let ConversationEvent::UserUpdated(user) = user else {
        panic!()
    };
    assert_eq!(
        (user.is_online, user.is_notifiable),
        (Some(true), Some(false))
    );

    let added = ConversationEvent::from_envelope(&envelope(
        "onConversationAdd",
        &[
            ("MessagingBinding.Address", "+1555"),
            ("MessagingBinding.AuthorAddress", "+1666"),
            ("MessageBody", "hi"),
        ],
    ));
    let ConversationEvent::ConversationAdd(conversation) = added else {
        panic!()
    };
    assert_eq!(conversation.conversation_sid, None);
    assert_eq!(
        conversation.messaging_binding.author_address.as_deref(),
        Some("+1666")
    );
    assert_eq!(conversation.message_body.as_deref(), Some("hi"));
}

#[test]
fn unknown_event_types_keep_everything() {
    let parsed = ConversationEvent::from_envelope(&envelope("onSomethingNew", &[("Foo", "bar")]));
    assert_eq!(parsed.event_type(), None);
    let ConversationEvent::Unknown {
        event_type,
        common,
        extra,
    } = parsed
    else {
        panic!()
    };
    assert_eq!(event_type, "onSomethingNew");
    assert_eq!(common.source.as_deref(), Some("SDK"));
    assert_eq!(extra.get("Foo"), Some("bar"));
}
