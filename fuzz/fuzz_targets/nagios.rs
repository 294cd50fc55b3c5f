//! Fuzzes Nagios plugin output and its perfdata: no input may panic, and
//! every bad perfdata item it reports is on a line of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&code, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let c = vane_core::formats::nagios::parse(text, Some(i32::from(code) - 8));
    let lines = text.lines().count().max(1);
    for b in &c.bad {
        assert!(b.line >= 1 && b.line <= lines, "line {} of {lines}", b.line);
    }
    let _ = c.to_events("check");
});
