//! Fuzzes the level-expression parser and evaluator: neither may panic,
//! and a parse error must point inside the text (or just past its end).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vane_core::event::Event;
use vane_core::expr::Expr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ev = Event::new("m")
        .tag("region", "eu-west")
        .field("a", 1.5)
        .field("n", -3i64)
        .field("s", "text")
        .field("up", true);
    match Expr::parse(text) {
        Ok(e) => {
            let _ = e.matches(&ev);
            let _ = e.number(&ev);
        }
        Err(e) => assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{e}"),
    }
});
