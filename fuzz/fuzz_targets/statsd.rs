//! Fuzzes the statsd parser and aggregator: no packet may panic, a parsed
//! sample has a finite value and a rate in (0, 1], and every flushed timer
//! has min <= mean <= max.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vane_core::event::Value;
use vane_core::formats::statsd::{Aggregator, parse_line};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut agg = Aggregator::new(vec![50.0, 99.9]);
    for line in text.lines() {
        if let Ok(s) = parse_line(line) {
            assert!(s.value.is_finite());
            assert!(s.rate > 0.0 && s.rate <= 1.0);
            assert!(!s.name.is_empty());
            agg.add(&s);
        }
    }
    for e in agg.flush(0) {
        let f = |k: &str| e.get_field(k).and_then(Value::as_f64);
        if let (Some(min), Some(mean), Some(max)) = (f("min"), f("mean"), f("max")) {
            assert!(min <= max);
            // Summing can round or overflow; within rounding the mean lies between.
            if mean.is_finite() {
                let slack = (min.abs() + max.abs()) * 1e-9;
                assert!(min - slack <= mean && mean <= max + slack, "{min} {mean} {max}");
            }
        }
    }
});
