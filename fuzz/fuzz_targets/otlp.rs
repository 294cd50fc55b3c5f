//! OTLP bodies as the `otlp` source reads them, protobuf and JSON (the
//! decoding and mapping of `vane-plugins/src/otlp/`): no bytes may panic,
//! and the events of a body, sent as the `otlp` sink sends them and read
//! again, are the same names, hosts and values.
#![no_main]

// At the crate root, where the modules' `super::proto` finds its sibling.
#[path = "../../crates/vane-plugins/src/otlp/events.rs"]
mod events;
#[path = "../../crates/vane-plugins/src/otlp/json.rs"]
mod json;
#[path = "../../crates/vane-plugins/src/otlp/metrics.rs"]
mod metrics;
#[path = "../../crates/vane-plugins/src/otlp/proto.rs"]
mod proto;

use libfuzzer_sys::fuzz_target;
use proto::ExportMetricsServiceRequest;
use prost::Message as _;
use vane_core::event::{Event, Text};

fn key(e: &Event) -> (Text, Text, Option<u64>) {
    (e.name.clone(), e.host.clone(), e.get_field("value").and_then(|v| v.as_f64()).map(f64::to_bits))
}

fn check(req: ExportMetricsServiceRequest) {
    let events: Vec<Event> = events::events(req).flatten().collect();
    let again = ExportMetricsServiceRequest::decode(metrics::request(&events, &[]).encode_to_vec().as_slice())
        .expect("what vane encodes decodes");
    let back: Vec<Event> = events::events(again).map(|r| r.expect("vane's own points read")).collect();
    let mut a: Vec<_> = events.iter().map(key).collect();
    let mut b: Vec<_> = back.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = ExportMetricsServiceRequest::decode(data) {
        check(req);
    }
    if let Ok(req) = json::request(data) {
        check(req);
    }
});
