//! Fuzzes the line-protocol decoder: it must never panic, every error must
//! name a line and column inside the input, and whatever decodes must encode
//! and decode again to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vane_core::lineproto::{Precision, decode, encode_into};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    for r in decode(text, Precision::Nanoseconds, 0) {
        match r {
            Err(e) => {
                assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
                assert!(e.column >= 1);
            }
            Ok(ev) => {
                let mut out = String::new();
                if encode_into(&mut out, &ev, Precision::Nanoseconds) {
                    let again: Vec<_> = decode(&out, Precision::Nanoseconds, 0).collect();
                    assert_eq!(again.len(), 1, "{out:?}");
                    assert_eq!(again[0].as_ref().unwrap(), &ev, "{out:?}");
                }
            }
        }
    }
});
