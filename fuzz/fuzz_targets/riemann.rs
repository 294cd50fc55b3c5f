//! Riemann messages as the `riemann` source reads them (the mapping of
//! `vane-plugins/src/riemann.rs`): no bytes may panic, and an event read
//! in and written out keeps its service, host, state and metric.
#![no_main]

#[path = "../../crates/vane-plugins/src/riemann.rs"]
mod riemann;

use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = riemann::Msg::decode(data) else { return };
    for e in msg.events {
        let Ok(ev) = riemann::event(e) else { continue };
        let Some(metric) = ev.get_field("value").and_then(|v| v.as_f64()) else { continue };
        let out = riemann::to_riemann(std::slice::from_ref(&ev), &[]);
        assert_eq!(out.len(), 1, "{ev:?}");
        let back = riemann::event(out[0].clone()).unwrap();
        assert_eq!((&back.name, &back.host, back.state), (&ev.name, &ev.host, ev.state));
        let again = back.get_field("value").and_then(|v| v.as_f64()).unwrap();
        assert!(again == metric || (again.is_nan() && metric.is_nan()), "{ev:?}");
    }
});
