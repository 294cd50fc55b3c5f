//! Fuzzes the line-protocol decoder: it must never panic, every error must
//! name a line and column inside the input, whatever decodes must encode
//! and decode again to the same event, and a stream cut anywhere must
//! decode as the whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vane_core::lineproto::{Precision, Records, decode, encode_into};

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    let whole: Vec<_> = decode(data, Precision::Nanoseconds, 0).collect();
    // The first byte chooses where the stream is cut.
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut records = Records::new(Precision::Nanoseconds, usize::MAX);
    let mut chunked = Vec::new();
    records.extend(&data[..cut]);
    records.decode(false, 0, |r| chunked.push(r));
    records.extend(&data[cut..]);
    records.decode(true, 0, |r| chunked.push(r));
    assert_eq!(chunked, whole);
    for r in whole {
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
