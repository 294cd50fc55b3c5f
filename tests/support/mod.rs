//! Helpers shared by the integration tests: real servers on loopback.
//! Each test binary uses some of them.
#![allow(dead_code)]

pub mod agent;
pub mod http;
pub mod influx;
pub mod postgres;
pub mod proc;
pub mod prometheus;
