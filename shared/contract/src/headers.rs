//! NATS header names set by the ingress and read by consumers.

/// The Twilio `EventType` (on every message).
pub const EVENT_TYPE: &str = "Twilio-Event-Type";
/// The Twilio `AccountSid` (on every message).
pub const ACCOUNT_SID: &str = "Twilio-Account-Sid";
/// The Twilio `ConversationSid`, when the event has one.
pub const CONVERSATION_SID: &str = "Twilio-Conversation-Sid";
/// W3C trace context, taken from the webhook or started by the ingress.
pub const TRACEPARENT: &str = "traceparent";
/// Pre-event requests: Unix epoch milliseconds when the ingress stops waiting.
pub const DEADLINE: &str = "Frontline-Deadline";
/// JetStream's de-duplication id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// Dead letters: why the consumer gave up.
pub const DLQ_REASON: &str = "Frontline-Dlq-Reason";
/// Dead letters: the subject the event was stored under.
pub const ORIGINAL_SUBJECT: &str = "Frontline-Original-Subject";
/// The prefix of the headers that describe the Twilio event (the only ones a dead letter keeps,
/// with [`TRACEPARENT`]).
pub const TWILIO_PREFIX: &str = "Twilio-";
/// The HTTP header carrying Twilio's idempotency token.
pub const HTTP_IDEMPOTENCY_TOKEN: &str = "I-Twilio-Idempotency-Token";
/// The HTTP header carrying Twilio's signature.
pub const HTTP_SIGNATURE: &str = "X-Twilio-Signature";
/// The HTTP header naming the shared key and algorithm of Twilio's SharedKey scheme.
pub const HTTP_SIGNATURE_SETTINGS: &str = "X-Twilio-Webhooks-Signature-Settings";

/// The value of [`DEADLINE`]: Unix epoch milliseconds, in decimal.
pub fn deadline_value(unix_millis: u64) -> String {
    unix_millis.to_string()
}

/// Reads a [`DEADLINE`] value back; `None` when it is not one.
pub fn parse_deadline(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_reads_back_as_written() {
        for millis in [0, 1_764_412_800_123, u64::MAX] {
            assert_eq!(parse_deadline(&deadline_value(millis)), Some(millis));
        }
        assert_eq!(deadline_value(1_764_412_800_123), "1764412800123");
        for bad in ["", "soon", "-1", "1.5", "18446744073709551616"] {
            assert_eq!(parse_deadline(bad), None, "{bad}");
        }
    }
}
