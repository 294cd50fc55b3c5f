//! vane's runtime: reads and validates the configuration, builds every job
//! from the plugin registry, schedules sources, moves events through engines
//! to sinks over bounded queues, applies a changed config as a difference,
//! and stops in order.

pub mod agent;
pub mod alloc;
pub mod buffer;
pub mod buffer_io;
pub mod check;
pub mod config;
pub mod engine;
pub mod guard;
pub mod http;
pub mod introspect;
pub mod levels;
pub mod notify;
pub mod probe;
pub mod queue;
pub mod reload;
pub mod route;
pub mod sink;
pub mod source;
pub mod standalone;
pub mod tasks;
pub mod ticks;

pub use agent::{run, run_reloading};
pub use config::{Config, default_config, load};
pub use probe::poll_once;

#[cfg(test)]
mod test_util;
