//! Built-in sources.

pub mod demo;
#[cfg(feature = "host")]
pub mod host;
pub mod internal;
