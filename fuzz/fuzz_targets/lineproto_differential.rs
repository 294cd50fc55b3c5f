//! Differential fuzzing of the line-protocol decoder against the simple
//! reference reading of the grammar in `crates/vane-core/tests/reference`:
//! for any bytes, both must accept and reject the same records and decode
//! the same events; what decodes must encode and decode again unchanged.
#![no_main]

#[path = "../../crates/vane-core/tests/reference/mod.rs"]
mod reference;

use libfuzzer_sys::fuzz_target;
use vane_core::event::NO_TIME;
use vane_core::lineproto::{Precision, decode, encode_into};

fuzz_target!(|data: &[u8]| {
    let ours: Vec<_> = decode(data, Precision::Nanoseconds, NO_TIME).collect();
    let plain: Vec<_> = ours.iter().map(|r| r.as_ref().map(Clone::clone).map_err(|_| ())).collect();
    assert_eq!(plain, reference::events(data, NO_TIME), "{:?}", String::from_utf8_lossy(data));
    let mut text = String::new();
    for ev in ours.iter().filter_map(|r| r.as_ref().ok()) {
        assert!(encode_into(&mut text, ev, Precision::Nanoseconds), "{ev:?}");
    }
    let again: Vec<_> = decode(&text, Precision::Nanoseconds, NO_TIME).map(Result::unwrap).collect();
    let first: Vec<_> = ours.into_iter().filter_map(Result::ok).collect();
    assert_eq!(again, first, "{text:?}");
});
