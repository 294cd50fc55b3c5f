//! Remote-write bodies as the `prometheus_remote_write` source reads them
//! (snappy, then the mapping of `vane-plugins/src/remote_write.rs`): no
//! bytes may panic or inflate past their declared length, and every event
//! has a name, a time and its sample's value.
#![no_main]

#[path = "../../crates/vane-plugins/src/remote_write.rs"]
mod remote_write;

use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let body = match snap::raw::decompress_len(data) {
        Ok(n) if n <= 1 << 20 => snap::raw::Decoder::new().decompress_vec(data).ok(),
        _ => None,
    };
    let body = body.as_deref().unwrap_or(data);
    let Ok(req) = remote_write::WriteRequest::decode(body) else { return };
    let mut types = remote_write::Types::default();
    types.learn(&req.metadata);
    let samples: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
    let mut n = 0;
    for e in remote_write::events(req.timeseries, &types).flatten() {
        n += 1;
        assert!(!e.name.is_empty());
        assert!(e.get_field("value").is_some());
        assert_ne!(e.time, vane_core::event::NO_TIME);
    }
    assert!(n <= samples);
});
