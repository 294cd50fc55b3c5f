//! Messages off the bus: Canopsis events and OpenStack notifications (the
//! parsers of `vane-plugins/src/amqp/`). No input may panic; a Canopsis
//! event read in is written out and read back with the same name, host and
//! state; a notification's samples carry what their meters promise.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/vane-plugins/src/amqp/canopsis.rs"]
mod canopsis;
#[path = "../../crates/vane-plugins/src/amqp/notification.rs"]
mod notification;

fn meters() -> Vec<notification::Meter> {
    let yaml = "[{ event_type: [a.b, \"c.*\", \"*x*\"], name: m, volume: $.payload.v, resource_id: $.payload.id, tags: { t: $.k } },\n\
                 { event_type: \"*\", name: one, type: cumulative, volume: 1 }]";
    let node = vane_core::node::yaml::parse("m.yaml", yaml, &|_| None).unwrap();
    vane_core::node::from_node(&node, "meters").unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(events) = canopsis::decode(text, 0) {
        for e in &events {
            let c = canopsis::CanopsisEvent::from_event(e);
            let _ = c.routing_key();
            let again = canopsis::decode(&serde_json::to_string(&c).unwrap(), 0).unwrap();
            assert_eq!((&again[0].name, &again[0].host, again[0].state), (&e.name, &e.host, e.state));
        }
    }
    let _ = notification::timestamp(text);
    let _ = notification::matches(text.split('\0').next().unwrap_or(""), text.rsplit('\0').next().unwrap_or(""));
    let Ok(n) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(notification::Outcome::Samples(evs)) = notification::samples(&meters(), &n, 7) {
        assert!(evs.iter().any(|e| e.name == "one"), "the catch-all meter named every type");
        for e in &evs {
            assert!(e.get_tag("event_type").is_some());
            assert!(e.get_field("value").is_some());
        }
    }
});
