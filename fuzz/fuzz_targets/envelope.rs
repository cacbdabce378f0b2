//! Envelope and typed-event decoding of arbitrary payloads: never a panic; what decodes
//! re-encodes to an equal envelope.
#![no_main]

use frontline_shared::{ConversationEvent, Envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::from_slice(data) {
        let again = Envelope::from_slice(&envelope.to_vec()).expect("re-encoded envelopes decode");
        assert_eq!(again, envelope);
        let _ = ConversationEvent::from_envelope(&envelope);
    }
});
