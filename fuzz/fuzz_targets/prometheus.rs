//! Fuzzes the Prometheus text parser: no input may panic, and every bad line
//! it reports exists in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (events, bad) = vane_core::formats::prometheus::parse(text, 0);
    let lines = text.lines().count().max(1);
    for b in &bad {
        assert!(b.line >= 1 && b.line <= lines, "line {} of {lines}", b.line);
    }
    for e in &events {
        assert!(!e.fields.is_empty());
    }
});
