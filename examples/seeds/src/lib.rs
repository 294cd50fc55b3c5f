//! The example plugins of the five systems vane grows from, written for
//! vane, and the function that adds them to a registry. A crate of plugins
//! needs only `vane-core`; `src/main.rs` is a custom build of vane with them.

pub mod canopsis;
pub mod ceilometer;
pub mod duct;
pub mod telemetry;
pub mod tourbillon;

use vane_core::registry::Registry;

/// Registers every example under a reverse-domain name.
pub fn register(r: &mut Registry) {
    r.source::<duct::hello_world::HelloWorld>("org.duct.hello_world", "Duct's HelloWorld")
        .source::<duct::flip_flop::FlipFlop>("org.duct.flip_flop", "Duct's flip-flop HelloWorld")
        .source::<duct::process_count::ProcessCount>("org.duct.process_count", "Duct's ProcessCount: ps -e")
        .service::<duct::number_proxy::NumberProxy>("org.duct.number_proxy", "Duct's NumberProxy: numbers over TCP")
        .engine_fn(
            "org.canopsis.awesome",
            "Canopsis's my_awesome_work and my_awesome_beat",
            canopsis::my_awesome_work,
            Some(canopsis::my_awesome_beat),
        )
        .source::<ceilometer::CpuPollster>("org.openstack.ceilometer.cpu", "Ceilometer's CPUPollster, per process")
        .service::<ceilometer::InstanceNotifications>(
            "org.openstack.ceilometer.instance_notifications",
            "Ceilometer's InstanceNotifications, from JSON lines",
        )
        .source::<telemetry::Random>("com.telemetryapp.random", "the Telemetry Agent's random flows")
        .service_fn(
            "org.tourbillon.example",
            "Tourbillon's plugin: ready, its own config, a loop; its sink creates the database and policy",
            tourbillon::tourbillon,
        );
}

/// A registry of the examples alone (for their tests).
pub fn registry() -> Registry {
    let mut r = Registry::new();
    register(&mut r);
    r
}
