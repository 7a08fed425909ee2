//! Any bytes as a compiled policy: the gateway's loader must refuse bad input without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(policy) = gateway_policy::Policy::from_json(text) {
            let _ = policy.decide(&gateway_policy::Attrs::default());
        }
    }
});
