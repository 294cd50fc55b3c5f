//! Built-in sources.

#[cfg(feature = "http")]
pub mod checks;
pub mod demo;
pub mod exec;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "http")]
pub mod influx_http;
pub mod internal;
pub mod listen;
#[cfg(feature = "host")]
pub mod procstat;
#[cfg(feature = "http")]
pub mod scrape;
#[cfg(feature = "sql")]
pub mod sql;
