//! Envelope and typed-event decoding of arbitrary payloads: never a panic; what decodes
//! re-encodes to an equal envelope; decoding only some parameters accepts exactly what full
//! decoding accepts and gives the same envelope without the others.
#![no_main]

use frontline_shared::{ConversationEvent, Envelope};
use libfuzzer_sys::fuzz_target;

/// The names the resolvers' rules read, and one that rarely appears.
const WANTED: &[&str] = &[
    "MessagingBinding.Address",
    "MessagingBinding.AuthorAddress",
    "Attributes",
    "A",
];

fuzz_target!(|data: &[u8]| {
    let full = Envelope::from_slice(data);
    let selected = Envelope::from_slice_with_params(data, WANTED);
    assert_eq!(full.is_ok(), selected.is_ok(), "the two decoders disagree");
    if let (Ok(envelope), Ok(selected)) = (full, selected) {
        for (name, _) in selected.params.iter() {
            assert!(WANTED.contains(&name), "an unwanted parameter was kept");
        }
        for name in WANTED {
            assert_eq!(
                selected.params.get_all(name).collect::<Vec<_>>(),
                envelope.params.get_all(name).collect::<Vec<_>>()
            );
        }
        let again = Envelope::from_slice(&envelope.to_vec()).expect("re-encoded envelopes decode");
        assert_eq!(again, envelope);
        let _ = ConversationEvent::from_envelope(&envelope);
    }
});
