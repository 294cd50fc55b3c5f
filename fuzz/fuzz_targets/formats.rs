//! Fuzzes the text formats programs write (Nagios output and perfdata,
//! Prometheus text, Graphite and JSON lines): no input may panic, and every
//! reported bad line must exist in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vane_core::formats::{Format, decode_text};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = match selector % 5 {
        0 => Format::Nagios,
        1 => Format::Prometheus,
        2 => Format::Graphite,
        3 => Format::Json,
        _ => Format::Influx,
    };
    let code = Some(i32::from(selector >> 3) - 8);
    let (events, bad) = decode_text(format, rest, code, "check", 0);
    let lines = rest.split(|&b| b == b'\n').count();
    for b in &bad {
        assert!(b.line >= 1 && b.line <= lines, "line {} of {lines}", b.line);
    }
    for e in &events {
        let _ = vane_core::lineproto::encode(e, vane_core::lineproto::Precision::Nanoseconds);
    }
});
