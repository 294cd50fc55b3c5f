//! vane's runtime: reads and validates the configuration, builds every job
//! from the plugin registry, schedules sources, moves events through engines
//! to sinks over bounded queues, and stops in order.

pub mod agent;
pub mod buffer;
pub mod config;
pub mod guard;
pub mod http;
pub mod introspect;
pub mod pipeline;
pub mod schedule;
pub mod standalone;
pub mod yaml;

pub use agent::{run, test_job};
pub use config::{Config, default_config, load};
