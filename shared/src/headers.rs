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
/// The HTTP header carrying Twilio's idempotency token.
pub const HTTP_IDEMPOTENCY_TOKEN: &str = "I-Twilio-Idempotency-Token";
/// The HTTP header carrying Twilio's signature.
pub const HTTP_SIGNATURE: &str = "X-Twilio-Signature";
