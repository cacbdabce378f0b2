//! Resolver reply decoding of arbitrary payloads: never a panic; what decodes round-trips.
#![no_main]

use frontline_shared::PreReply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = PreReply::from_slice(data) {
        assert_eq!(PreReply::from_slice(&reply.to_vec()).expect("re-encoded replies decode"), reply);
    }
});
