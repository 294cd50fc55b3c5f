//! Fuzzes Graphite plaintext with templates: the first line is a template,
//! the rest are lines. Nothing may panic; a bad template or line is an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vane_core::formats::graphite::Templates;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let spec = lines.next().unwrap_or("");
    let Ok(t) = Templates::parse(&[spec]) else {
        return;
    };
    for line in lines {
        if let Ok(e) = t.parse_line(line, 0) {
            assert_eq!(e.fields.len(), 1);
            let _ = vane_core::lineproto::encode(&e, vane_core::lineproto::Precision::Nanoseconds);
        }
    }
});
