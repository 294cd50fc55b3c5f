//! What vane's integration tests share (the root package's `tests/` and the
//! seed examples'): running the real binary as a user would, waiting on the
//! files and logs it writes, and the real servers and clients the tests
//! start on loopback.

pub mod agent;
pub mod browser;
pub mod fs;
pub mod http;
pub mod influx;
pub mod postgres;
pub mod proc;
pub mod prometheus;
pub mod python;
pub mod rabbitmq;

pub use agent::*;
