//! Helpers shared by the integration tests: real servers on loopback.

pub mod influx;
