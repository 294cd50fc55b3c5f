//! Built-in sources.

#[cfg(feature = "host")]
pub mod host;
pub mod internal;
