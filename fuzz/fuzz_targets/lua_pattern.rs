//! Lua patterns on vane's matcher: any pattern on any subject ends (within
//! its meter) without a panic or an index out of bounds. The input is the
//! pattern, a zero byte, then the subject.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/vane-plugins/src/lua/pattern.rs"]
#[allow(dead_code, reason = "the target uses part of the module")]
mod pattern;

fuzz_target!(|data: &[u8]| {
    let (pat, src) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let mut left = 1_000_000i64;
    let mut meter = |n: u32| {
        left -= i64::from(n);
        left > 0
    };
    let mut m = pattern::Matcher::new(src, pat, &mut meter);
    let (anchor, p0) = if pat.first() == Some(&b'^') { (true, 1) } else { (false, 0) };
    for s in 0..=src.len() {
        match m.try_at(s, p0) {
            Ok(Some(e)) => {
                assert!(e >= s && e <= src.len());
                let _ = m.captures(s, e, true);
                break;
            }
            Ok(None) if !anchor => {}
            _ => break,
        }
    }
});
