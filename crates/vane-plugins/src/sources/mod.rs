//! Built-in sources.

pub mod demo;
pub mod exec;
#[cfg(feature = "host")]
pub mod host;
pub mod internal;
pub mod listen;
